/*
 * execlog._speedups: the hot path of a traced call, in C.
 *
 * Optional. The pure-Python code in _decorator.py, _execution.py and _ids.py is the reference
 * implementation; this module repeats only its common case (a plain function, no tags or
 * per-call overrides, room in the queue, a writer running) and hands everything else back to
 * it. It reads and writes the `__slots__` of execlog's own Python classes directly, through
 * offsets taken from their member descriptors when `install()` is called; `install()` refuses
 * (and execlog stays pure Python) if any of them is not what it expects.
 *
 * Everything here runs with the GIL held. Calls back into Python (the binder, orjson's
 * `default`, a __repr__, the redactor) and the release of the last reference to an object
 * (its __del__) can run arbitrary code, including code that reconfigures execlog or lets
 * another thread run: across such points this code holds strong references to what it still
 * uses and reads shared state (the recorder's slots) again afterwards.
 *
 * So can an allocation. On 3.10 and 3.11 allocating any object the garbage collector tracks
 * (tp_alloc of a handle, a tuple, a dict, a bound method, a set iterator, the HAMT node and
 * token of PyContextVar_Set and PyContextVar_Reset) may run a
 * collection, and with it gc callbacks, __del__ of cyclic garbage and weakref.finalize, which
 * may call execlog.configure(), reset() or replace any slot. Only int, float and str
 * allocations do not. The rule, which a reader can check function by function: a pointer
 * read with SLOT() (or out of a container) is borrowed, and a borrowed pointer is used only
 * up to the next call that can run Python code or allocate a tracked object; what is used
 * beyond one is taken with Py_NewRef/Py_INCREF right where it is read, or read again after
 * it. (Comparing a borrowed pointer with Py_True, Py_None or an interned constant is not a
 * use: those are never freed.)
 *
 * Errors: a function either returns its value with no exception set or fails with one set.
 * Where an error means "take the Python path", only an Exception is cleared: KeyboardInterrupt,
 * SystemExit and the like propagate as they would from the Python path. ValueError from
 * PyContextVar_Reset (a context ended in another Context) is the one error ignored outright;
 * any other failure to set or reset the current execution restores the variable before it is
 * reported, so no finished (or never begun) handle stays current.
 *
 * Also here: blocks (`with execution(...)`: `new_block`, `enter`, `exit`, bound as
 * ExecutionHandle's methods through instancemethod) and UUIDv7 ids (`new_id`, same layout as
 * _ids.py).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <pthread.h>
#include <unistd.h>

#if !defined(__linux__) || defined(Py_GIL_DISABLED)
#define EXECLOG_UNSUPPORTED 1
#endif

#define SLOT(obj, off) (*(PyObject **)((char *)(obj) + (off)))

/* -- slot offsets, filled by install() ------------------------------------------------------ */

/* ExecutionHandle */
static Py_ssize_t H_name, H_kind, H_execution_id, H_parent, H_correlation, H_run_id, H_trigger,
    H_encoder, H_started, H_thread, H_generation, H_inputs, H_state, H_extra, H_token, H_t0;
/* Recorder */
static Py_ssize_t R_enabled, R_generation, R_config_generation, R_config, R_channel, R_writer,
    R_pid, R_host, R_encoder, R_clock_offset;
/* Config */
static Py_ssize_t C_capture_inputs, C_capture_output, C_sample_rate, C_always_record_errors;
/* Channel */
static Py_ssize_t CH_queue, CH_limit, CH_waiters, CH_batch_size, CH_wake, CH_woken, CH_live;
/* _Spec */
static Py_ssize_t S_name, S_kind, S_trigger, S_encoder, S_encoder_generation, S_secret_params,
    S_capture_inputs, S_sample_rate;
/* Encoder */
static Py_ssize_t E_limit, E_redactor, E_default;
/* Redactor */
static Py_ssize_t RD_cache, RD_words, RD_exempt;

/* -- objects, filled by install() ------------------------------------------------------------ */

static int installed = 0;
static PyTypeObject *handle_type, *recorder_type, *config_type, *channel_type, *spec_type,
    *encoder_type, *redactor_type;
static PyObject *recorder;       /* the process's Recorder */
static PyObject *current;        /* the ContextVar holding the current ExecutionHandle */
static PyObject *dumps;          /* orjson.dumps */
static PyObject *dumps_options;  /* execlog._encoding._OPTIONS */
static PyObject *redacted;       /* "[REDACTED]" */
static PyObject *empty_marker;   /* inspect.Parameter.empty: a parameter without a default */
static PyObject *env_data;       /* os.environ's underlying dict, or NULL: always go slow */
static PyObject *env_parent, *env_correlation;
static PyObject *py_complete;    /* _decorator._complete(handle, result) */
static PyObject *py_end;         /* _decorator._end(handle, exc) */
static PyObject *py_report;      /* _decorator._report_internal(exc) */
static PyObject *root_probe;     /* _otel_link.span_current(), or NULL (set_root_probe) */
static PyObject *root_var_getter; /* _otel_link.runtime_var(), or NULL (set_root_probe) */
static PyObject *otel_var;       /* OpenTelemetry's current-Context ContextVar, once known */
static int otel_var_resolved = 0;
static PyObject *token_missing;  /* contextvars.Token.MISSING */
/* Head sampling (set_sampling): the type of the value `current` holds in an unsampled tree,
 * the one such value C roots use, and os.environ's key of the inherited decision. */
static PyTypeObject *unsampled_type;
static PyObject *unsampled;
static PyObject *env_sampled;

/* interned strings and constants */
static PyObject *s_is_secret, *s_append, *s_encode, *s_may_contain, *s_set, *s_enqueue,
    *s_running_written, *s_final, *s_manual, *s_child, *s_success, *s_close, *s_throw,
    *s_block, *s_kind, *s_inputs, *s_trigger_kind, *s_old_value, *s_otel_trace,
    *s_sampled, *s_sample_rate, *s_own_rate, *s_token, *kw_final, *zero, *one, *two, *three,
    *empty_str, *null_value;

/* -- ids (UUIDv7, same layout as _ids.py) ------------------------------------------------------ */

static uint64_t id_tail = 0x8000000000000000ULL; /* variant | 46 random bits << 16 */
static uint32_t id_counter = 0;                   /* low 16 bits used */
static const char HEX[] = "0123456789abcdef";

static inline void
put_hex(Py_UCS1 *out, uint64_t value, int digits)
{
    for (int i = digits - 1; i >= 0; i--) {
        out[i] = (Py_UCS1)HEX[value & 0xF];
        value >>= 4;
    }
}

/* The id as text, kept between calls: the millisecond part changes once per millisecond and
 * the random tail once per process, so a new id rewrites 7 hex digits and copies 36 bytes. */
static char id_text[36];
static uint64_t id_text_ms = UINT64_MAX;
static uint64_t id_text_tail = 0;

static PyObject *
make_id(int64_t time_ns)
{
    if (time_ns < 0) {
        time_ns = 0;
    }
    uint64_t ms = (uint64_t)time_ns / 1000000U;
    uint64_t sub = (((uint64_t)time_ns % 1000000U) << 12) / 1000000U;
    uint32_t count = id_counter++ & 0xFFFFU;
    Py_UCS1 *t = (Py_UCS1 *)id_text;
    if (id_text_tail != id_tail || id_text_ms == UINT64_MAX) {
        put_hex(t + 19, id_tail >> 48, 4);
        t[8] = t[13] = t[18] = t[23] = '-';
        t[14] = '7';
        put_hex(t + 24, (id_tail & 0xFFFFFFFFFFFFULL) >> 16, 8);
        id_text_tail = id_tail;
        id_text_ms = UINT64_MAX - 1; /* forces the time part below */
    }
    if (ms != id_text_ms) {
        put_hex(t, ms >> 16, 8);
        put_hex(t + 9, ms & 0xFFFF, 4);
        id_text_ms = ms;
    }
    put_hex(t + 15, sub, 3);
    put_hex(t + 32, count, 4);
    PyObject *text = PyUnicode_New(36, 127);
    if (text == NULL) {
        return NULL;
    }
    memcpy(PyUnicode_1BYTE_DATA(text), id_text, 36);
    return text;
}

static inline int64_t
clock_ns(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* -- small helpers -------------------------------------------------------------------------- */

/* The queue last appended to and its bound append method (the channel is replaced rarely). */
static PyObject *cached_queue, *cached_append;

static int take(PyObject *obj, PyObject **out);

/* threading.get_ident() as an int, the last one kept: a thread records many executions. */
static unsigned long last_ident;
static PyObject *last_ident_obj;

static PyObject *
thread_id(void)
{
    unsigned long ident = PyThread_get_thread_ident();
    if (last_ident_obj == NULL || ident != last_ident) {
        PyObject *obj = PyLong_FromUnsignedLong(ident);
        if (obj == NULL) {
            return NULL;
        }
        Py_XSETREF(last_ident_obj, obj);
        last_ident = ident;
    }
    return Py_NewRef(last_ident_obj);
}

/* Store `value` (a new reference, stolen) in a slot, releasing what was there. */
static inline void
set_slot(PyObject *obj, Py_ssize_t off, PyObject *value)
{
    PyObject **p = (PyObject **)((char *)obj + off);
    PyObject *old = *p;
    *p = value;
    Py_XDECREF(old);
}

static inline void
set_slot_borrowed(PyObject *obj, Py_ssize_t off, PyObject *value)
{
    Py_INCREF(value);
    set_slot(obj, off, value);
}

/* Whether `handle` is the current execution (0 also when that cannot be read). */
static int
is_current(PyObject *handle)
{
    PyObject *now = NULL;
    if (PyContextVar_Get(current, NULL, &now) < 0) {
        PyErr_Clear();
        return 0;
    }
    Py_XDECREF(now);
    return now == handle; /* compared only: `handle` is held by the caller */
}

/*
 * Make `previous` (NULL: unset, which reads as None) current again where `handle` still is
 * after setting or resetting the variable failed: 3.11's PyContextVar_Set sets it even when
 * making its token fails, and PyContextVar_Reset uses the token up before its own allocation
 * can fail. Keeps the exception being raised. 0, or -1 if `handle` is still current.
 */
static int
restore_current(PyObject *handle, PyObject *previous)
{
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    int still = is_current(handle);
    for (int attempt = 0; still && attempt < 3; attempt++) {
        PyObject *token = PyContextVar_Set(current, previous == NULL ? Py_None : previous);
        Py_XDECREF(token);
        PyErr_Clear();
        still = is_current(handle);
    }
    PyErr_Restore(type, value, tb);
    return still ? -1 : 0;
}

/*
 * Reset the current execution with `token` (a strong reference, released) as the Python path
 * does: a ValueError (ended in another context) is ignored; any other failure puts the token's
 * old value back and returns -1 with the exception set, to be reported.
 */
static int
reset_current(PyObject *handle, PyObject *token)
{
    if (token == NULL || token == Py_None) {
        Py_XDECREF(token);
        return 0;
    }
    if (PyContextVar_Reset(current, token) == 0) {
        Py_DECREF(token);
        return 0;
    }
    if (PyErr_ExceptionMatches(PyExc_ValueError)) {
        PyErr_Clear(); /* ended in another context (a generator finalised elsewhere) */
        Py_DECREF(token);
        return 0;
    }
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyObject *previous = PyObject_GetAttr(token, s_old_value); /* no allocation */
    if (previous == NULL) {
        PyErr_Clear();
    }
    restore_current(handle, previous == token_missing ? NULL : previous);
    Py_XDECREF(previous);
    Py_DECREF(token);
    PyErr_Restore(type, value, tb);
    return -1;
}

/* Equal ints (generations): identity first, then value. */
static inline int
same_int(PyObject *a, PyObject *b)
{
    if (a == b) {
        return 1;
    }
    if (a == NULL || b == NULL || !PyLong_CheckExact(a) || !PyLong_CheckExact(b)) {
        return 0;
    }
    int r = PyObject_RichCompareBool(a, b, Py_EQ);
    if (r < 0) {
        PyErr_Clear();
        return 0;
    }
    return r;
}

static inline Py_ssize_t
as_ssize(PyObject *value, Py_ssize_t fallback)
{
    if (value == NULL || !PyLong_Check(value)) {
        return fallback;
    }
    Py_ssize_t n = PyLong_AsSsize_t(value);
    if (n == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        return fallback;
    }
    return n;
}

/*
 * as_ssize() of an int slot that holds the same int object call after call (a channel's limit
 * and batch size): the last object seen and its value are kept, with a reference, so the
 * object found again is the one converted (ints are immutable).
 */
typedef struct {
    PyObject *obj;
    Py_ssize_t value;
} KnownInt;

static KnownInt known_limit, known_batch_size;

static inline Py_ssize_t
known_ssize(KnownInt *known, PyObject *value, Py_ssize_t fallback)
{
    if (value != NULL && value == known->obj) {
        return known->value;
    }
    Py_ssize_t n = as_ssize(value, fallback);
    if (value != NULL && PyLong_CheckExact(value)) {
        Py_XSETREF(known->obj, Py_NewRef(value)); /* the old one is an int: no code runs */
        known->value = n;
    }
    return n;
}

/*
 * The clock readings stored in handles lately, by int object: begin() and enter_block() make
 * them, complete() and exit_block() read them back. The cache holds a reference to each int,
 * so an object found here is the one stored and its value the one cached (ints are
 * immutable); converting a two-digit int back costs more than this look-up.
 */
#define NS_CACHE 64
static struct {
    PyObject *obj;
    int64_t value;
} ns_cache[NS_CACHE];

static inline size_t
ns_slot(PyObject *obj)
{
    return ((uintptr_t)obj >> 4) % NS_CACHE;
}

static inline void
remember_ns(PyObject *obj, int64_t value)
{
    size_t i = ns_slot(obj);
    Py_INCREF(obj);
    Py_XSETREF(ns_cache[i].obj, obj);
    ns_cache[i].value = value;
}

/* A clock reading kept in a slot (an int of 64 bits); 0 if it is not one. On 3.11,
 * PyLong_AsLongLong of a two-digit int takes a slow generic path; this one does not. */
static inline int
read_ns(PyObject *value, int64_t *out)
{
    if (value == NULL || !PyLong_CheckExact(value)) {
        return 0;
    }
    size_t i = ns_slot(value);
    if (ns_cache[i].obj == value) {
        *out = ns_cache[i].value;
        return 1;
    }
    int overflow = 0;
    long long n = PyLong_AsLongLongAndOverflow(value, &overflow);
    if (overflow != 0 || (n == -1 && PyErr_Occurred())) {
        PyErr_Clear();
        return 0;
    }
    *out = (int64_t)n;
    return 1;
}

/* Falsy trigger_kind (None or "") means the default. */
static inline int
is_unset(PyObject *value)
{
    return value == NULL || value == Py_None || (PyUnicode_Check(value) && PyUnicode_GET_LENGTH(value) == 0);
}

/* The recorder's state, read once per call. NULL members mean "take the Python path". */
typedef struct {
    PyObject *channel, *config, *writer;
} State;

static inline int
read_state(State *st)
{
    PyObject *rec = recorder;
    st->channel = SLOT(rec, R_channel);
    st->config = SLOT(rec, R_config);
    st->writer = SLOT(rec, R_writer);
    return st->channel != NULL && Py_TYPE(st->channel) == channel_type && st->config != NULL
           && Py_TYPE(st->config) == config_type && st->writer != NULL;
}

/*
 * JSON for the commonest values, written here: None, bool, an int of 64 bits, ASCII text that
 * needs no escape, and a flat dict of those under str keys (a call's inputs). The text is
 * byte for byte what orjson writes (tests/test_speedups.py compares them); anything else
 * returns 0 and goes to orjson.
 */
typedef struct {
    char *p, *end;
} Out;

static inline int
put(Out *out, const char *text, size_t n)
{
    if ((size_t)(out->end - out->p) < n) {
        return 0;
    }
    memcpy(out->p, text, n);
    out->p += n;
    return 1;
}

static int
put_ascii(Out *out, PyObject *text)
{
    if (!PyUnicode_IS_ASCII(text)) {
        return 0;
    }
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    const Py_UCS1 *data = PyUnicode_1BYTE_DATA(text);
    if (out->end - out->p < n + 2) {
        return 0;
    }
    char *p = out->p;
    *p++ = '"';
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_UCS1 c = data[i];
        if (c < 0x20 || c == '"' || c == '\\') {
            return 0; /* needs an escape: orjson writes it */
        }
        if (c == ':' && i + 2 < n && data[i + 1] == '/' && data[i + 2] == '/') {
            return 0; /* a URL, whose password the general path masks */
        }
        *p++ = (char)c;
    }
    *p++ = '"';
    out->p = p;
    return 1;
}

static int
put_scalar(Out *out, PyObject *value)
{
    PyTypeObject *cls = Py_TYPE(value);
    if (value == Py_None) {
        return put(out, "null", 4);
    }
    if (value == Py_True) {
        return put(out, "true", 4);
    }
    if (value == Py_False) {
        return put(out, "false", 5);
    }
    if (cls == &PyLong_Type) {
        int overflow = 0;
        long long n = PyLong_AsLongLongAndOverflow(value, &overflow);
        if (overflow != 0 || (n == -1 && PyErr_Occurred())) {
            PyErr_Clear();
            return 0; /* beyond 64 bits signed: orjson decides */
        }
        char digits[24];
        char *end = digits + sizeof digits, *p = end;
        unsigned long long u = n < 0 ? 0ULL - (unsigned long long)n : (unsigned long long)n;
        do {
            *--p = (char)('0' + u % 10);
            u /= 10;
        } while (u != 0);
        if (n < 0) {
            *--p = '-';
        }
        return put(out, p, (size_t)(end - p));
    }
    if (cls == &PyUnicode_Type) {
        return put_ascii(out, value);
    }
    return 0;
}

/* `"key":` of an object, after a comma unless it is the first. */
static int
put_member_key(Out *out, int *first, PyObject *key)
{
    if (!*first && !put(out, ",", 1)) {
        return 0;
    }
    *first = 0;
    return PyUnicode_CheckExact(key) && put_ascii(out, key) && put(out, ":", 1);
}

/* `"key":value` of an object, after a comma unless it is the first. */
static int
put_member(Out *out, int *first, PyObject *key, PyObject *value)
{
    if (!*first && !put(out, ",", 1)) {
        return 0;
    }
    *first = 0;
    return PyUnicode_CheckExact(key) && put_ascii(out, key) && put(out, ":", 1)
           && put_scalar(out, value);
}

static int
put_flat_dict(Out *out, PyObject *dict)
{
    Py_ssize_t pos = 0;
    PyObject *key, *value;
    int first = 1;
    if (!put(out, "{", 1)) {
        return 0;
    }
    while (PyDict_Next(dict, &pos, &key, &value)) {
        if (!put_member(out, &first, key, value)) {
            return 0;
        }
    }
    return put(out, "}", 1);
}

/* An output buffer of at most `limit` bytes (the payload limit) within `buffer`. */
#define QUICK_BUFFER 512
static inline Out
out_within(char *buffer, Py_ssize_t limit)
{
    Py_ssize_t room = limit < 0 ? 0 : (limit < QUICK_BUFFER ? limit : QUICK_BUFFER);
    Out out = {buffer, buffer + room};
    return out;
}

/* The text written into `buffer` as a str, or NULL with no exception. */
static PyObject *
out_text(const char *buffer, const Out *out)
{
    Py_ssize_t n = out->p - buffer;
    PyObject *text = PyUnicode_New(n, 127);
    if (text == NULL) {
        PyErr_Clear();
        return NULL;
    }
    memcpy(PyUnicode_1BYTE_DATA(text), buffer, (size_t)n);
    return text;
}

/*
 * The JSON text of `value` if it is one of the common shapes above and fits `limit`, else NULL
 * with no exception (take the general path). A dict only for `keys_checked`: an inputs dict,
 * whose keys are parameter names already checked for secrets.
 */
static PyObject *
quick_json(PyObject *value, Py_ssize_t limit, int keys_checked)
{
    char buffer[QUICK_BUFFER];
    Out out = out_within(buffer, limit);
    int ok = PyDict_CheckExact(value) ? keys_checked && put_flat_dict(&out, value)
                                      : put_scalar(&out, value);
    return ok ? out_text(buffer, &out) : NULL;
}

/* -- bounded capture: measuring a value, copying its beginning --------------------------------- */

/*
 * Redactor.is_secret for ASCII keys, in C: the words of the key (split at anything but
 * letters and digits, and at camelCase boundaries), lower-cased; secret when a run of them,
 * joined, is one of the redactor's words, unless the whole key, joined, is exempt. The words
 * are copied from the last redactor seen (they change only with the configuration).
 */
#define WORD_MAX 48
#define WORDS_MAX 64

typedef struct {
    PyObject *redactor; /* whose words these are (a strong reference) */
    char words[WORDS_MAX][WORD_MAX];
    int nwords, longest;
    char exempt[WORDS_MAX][WORD_MAX];
    int nexempt;
    unsigned char first[256]; /* letters a secret word starts with */
} SecretWords;

static SecretWords secret_words;

/* Copy an ASCII frozenset of str into `out`; -1 if it does not fit. */
static int
copy_words(PyObject *set, char out[][WORD_MAX], int *count, int *longest)
{
    *count = 0;
    if (set == NULL || !PyFrozenSet_CheckExact(set) || PySet_GET_SIZE(set) > WORDS_MAX) {
        return -1;
    }
    PyObject *iter = PyObject_GetIter(set), *item;
    if (iter == NULL) {
        PyErr_Clear();
        return -1;
    }
    int ok = 0;
    while ((item = PyIter_Next(iter)) != NULL) {
        Py_ssize_t n = PyUnicode_CheckExact(item) && PyUnicode_IS_ASCII(item)
                           ? PyUnicode_GET_LENGTH(item)
                           : -1;
        if (n < 1 || n >= WORD_MAX) {
            ok = -1;
        }
        else {
            memcpy(out[*count], PyUnicode_1BYTE_DATA(item), (size_t)n);
            out[*count][n] = '\0';
            if (longest != NULL && n > *longest) {
                *longest = (int)n;
            }
            (*count)++;
        }
        Py_DECREF(item);
    }
    Py_DECREF(iter);
    if (PyErr_Occurred()) {
        PyErr_Clear();
        return -1;
    }
    return ok;
}

static int
load_words(PyObject *redactor)
{
    if (secret_words.redactor == redactor) {
        return 0;
    }
    /* Copied into a table of its own, then over the shared one: iterating a set allocates,
     * and a collection may then run a traced call that comes back here. The redactor and its
     * sets are held meanwhile. */
    SecretWords *loaded = PyMem_Calloc(1, sizeof(SecretWords));
    if (loaded == NULL) {
        return -1; /* no exception: the Python path decides */
    }
    PyObject *words = Py_XNewRef(SLOT(redactor, RD_words));
    PyObject *exempt = Py_XNewRef(SLOT(redactor, RD_exempt));
    Py_INCREF(redactor);
    int ok = copy_words(words, loaded->words, &loaded->nwords, &loaded->longest) == 0
             && copy_words(exempt, loaded->exempt, &loaded->nexempt, NULL) == 0;
    Py_XDECREF(words);
    Py_XDECREF(exempt);
    if (!ok) {
        Py_DECREF(redactor);
        PyMem_Free(loaded);
        return -1;
    }
    for (int i = 0; i < loaded->nwords; i++) {
        loaded->first[(unsigned char)loaded->words[i][0]] = 1;
    }
    loaded->redactor = redactor; /* the reference taken above */
    PyObject *old = secret_words.redactor;
    secret_words = *loaded;
    PyMem_Free(loaded);
    Py_XDECREF(old);
    return 0;
}

static inline int
is_alnum(unsigned char ch)
{
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
}

static inline int
is_upper(unsigned char ch)
{
    return ch >= 'A' && ch <= 'Z';
}

static inline int
is_lower_or_digit(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9');
}

static int
is_word(const char *text, int n)
{
    for (int i = 0; i < secret_words.nwords; i++) {
        if ((int)strlen(secret_words.words[i]) == n && memcmp(secret_words.words[i], text, (size_t)n) == 0) {
            return 1;
        }
    }
    return 0;
}

/* 1, 0, or -1: not decided here (not ASCII, too long, the words not loaded). */
static int
c_is_secret(PyObject *redactor, PyObject *key)
{
    if (!PyUnicode_IS_ASCII(key) || PyUnicode_GET_LENGTH(key) > 256 || load_words(redactor) < 0) {
        return -1;
    }
    const unsigned char *k = PyUnicode_1BYTE_DATA(key);
    Py_ssize_t n = PyUnicode_GET_LENGTH(key);
    /* lower-cased letters and digits, and where each word starts */
    char low[257];
    int starts[257], nwords = 0, len = 0, candidate = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char ch = k[i];
        if (!is_alnum(ch)) {
            continue;
        }
        int boundary = i == 0 || !is_alnum(k[i - 1])
                       || (is_upper(ch) && is_lower_or_digit(k[i - 1]))
                       || (is_upper(ch) && is_upper(k[i - 1]) && i + 1 < n && k[i + 1] >= 'a'
                           && k[i + 1] <= 'z');
        unsigned char lower = is_upper(ch) ? (unsigned char)(ch + 32) : ch;
        if (boundary) {
            starts[nwords++] = len;
            candidate |= secret_words.first[lower];
        }
        low[len++] = (char)lower;
    }
    starts[nwords] = len;
    if (!candidate) {
        return 0; /* no word starts with the first letter of a secret word */
    }
    for (int e = 0; e < secret_words.nexempt; e++) {
        if ((int)strlen(secret_words.exempt[e]) == len && memcmp(secret_words.exempt[e], low, (size_t)len) == 0) {
            return 0;
        }
    }
    for (int i = 0; i < nwords; i++) {
        for (int j = i + 1; j <= nwords; j++) {
            int run = starts[j] - starts[i];
            if (run > secret_words.longest) {
                break;
            }
            if (is_word(low + starts[i], run)) {
                return 1;
            }
        }
    }
    return 0;
}

/* Whether `key` (an exact str) names a secret for `redactor`: 1, 0, or -1 when it cannot be
 * told without Python (a non-ASCII key not in the redactor's cache). Exact str keys hash and
 * compare without running Python code. */
static int
cached_secret(PyObject *redactor, PyObject *key)
{
    if (redactor == NULL || Py_TYPE(redactor) != redactor_type) {
        return -1;
    }
    int secret = c_is_secret(redactor, key); /* an ASCII key: the word rule, no look-up */
    if (secret >= 0) {
        return secret;
    }
    PyObject *cache = SLOT(redactor, RD_cache);
    if (cache != NULL && PyDict_CheckExact(cache)) {
        PyObject *hit = PyDict_GetItemWithError(cache, key);
        if (hit == Py_True || hit == Py_False) {
            return hit == Py_True;
        }
        if (hit == NULL && PyErr_Occurred()) {
            PyErr_Clear();
        }
    }
    return -1;
}

/* The same, asking Redactor.is_secret on a miss: 1, 0, or -1 with an exception set. May run
 * Python code. */
static int
key_is_secret(PyObject *redactor, PyObject *key)
{
    int secret = cached_secret(redactor, key);
    if (secret >= 0) {
        return secret;
    }
    PyObject *r = PyObject_CallMethodOneArg(redactor, s_is_secret, key);
    if (r == NULL) {
        return -1;
    }
    secret = PyObject_IsTrue(r);
    Py_DECREF(r);
    return secret;
}

#define MAX_DEPTH 200 /* as _encoding._MAX_DEPTH: copies are cut there, and measure() recurses no deeper (the Python measure goes on) */

static inline int
is_leaf(PyObject *v)
{
    PyTypeObject *t = Py_TYPE(v);
    return v == Py_None || t == &PyBool_Type || t == &PyLong_Type || t == &PyFloat_Type;
}

/*
 * _encoding._py_measure for built-in types: take a lower bound of `v`'s JSON size off *left;
 * objects of other types are measured by `hook(obj, left) -> left` (Python), or, without a
 * hook, make it -1. 1: *left went below zero (the value cannot fit); 0: go on; -1: not
 * measured here (no hook, or a dict changed size while the hook ran); -2: an error.
 */
static int
measure(PyObject *v, Py_ssize_t *left, int depth, PyObject *hook)
{
    PyTypeObject *t = Py_TYPE(v);
    if (is_leaf(v)) {
        *left -= 1;
    }
    else if (t == &PyUnicode_Type) {
        *left -= PyUnicode_GET_LENGTH(v) + 2;
    }
    else if (t == &PyList_Type || t == &PyTuple_Type) {
        if (depth > MAX_DEPTH) {
            goto unknown; /* deeper: the Python measure goes on without recursion */
        }
        *left -= 2 * PySequence_Fast_GET_SIZE(v) + 1;
        /* the size is read again at each step: the hook may shrink a list */
        for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(v) && *left >= 0; i++) {
            PyObject *item = PySequence_Fast_GET_ITEM(v, i);
            if (!is_leaf(item)) {
                Py_INCREF(item);
                int r = measure(item, left, depth + 1, hook);
                Py_DECREF(item);
                if (r != 0) {
                    return r;
                }
            }
        }
    }
    else if (t == &PyDict_Type) {
        if (depth > MAX_DEPTH) {
            goto unknown;
        }
        Py_ssize_t size = PyDict_GET_SIZE(v);
        *left -= 5 * size + 1; /* a member takes at least 5 bytes ("":0,) and its key */
        Py_ssize_t pos = 0;
        PyObject *key, *item;
        while (*left >= 0 && PyDict_Next(v, &pos, &key, &item)) {
            if (PyUnicode_CheckExact(key)) {
                *left -= PyUnicode_GET_LENGTH(key);
            }
            if (!is_leaf(item)) {
                Py_INCREF(item);
                int r = measure(item, left, depth + 1, hook);
                Py_DECREF(item);
                if (r != 0) {
                    return r;
                }
                if (PyDict_GET_SIZE(v) != size) {
                    return -1; /* changed by the hook: PyDict_Next cannot go on */
                }
            }
        }
    }
    else if (t == &PyBytes_Type) {
        *left -= PyBytes_GET_SIZE(v) + 3;
    }
    else if (t == &PyByteArray_Type) {
        *left -= PyByteArray_GET_SIZE(v) + 3;
    }
    else {
    unknown:
        if (hook == NULL) {
            return -1;
        }
        PyObject *r = PyObject_CallFunction(hook, "On", v, *left);
        if (r == NULL) {
            return -2;
        }
        if (!PyLong_Check(r)) {
            Py_DECREF(r);
            PyErr_SetString(PyExc_TypeError, "the measure hook must return an int");
            return -2;
        }
        Py_ssize_t after = PyLong_AsSsize_t(r);
        Py_DECREF(r);
        if (after == -1 && PyErr_Occurred()) {
            return -2;
        }
        *left = after;
    }
    return *left < 0 ? 1 : 0;
}

/* 1: `value`'s JSON is certainly longer than `limit` bytes; 0: it may fit; -1: not measured
 * here (objects of other types: no Python code runs). */
static int
exceeds_c(PyObject *value, Py_ssize_t limit)
{
    Py_ssize_t left = limit;
    int r = measure(value, &left, 0, NULL);
    return r < 0 ? -1 : left < 0;
}

/* exceeds(value, budget, hook) -> 1 if value's JSON is certainly longer than budget, 0 if it
 * may fit, -1 if not measured here (see measure). */
static PyObject *
sp_exceeds(PyObject *module, PyObject *const *argv, Py_ssize_t nargs)
{
    if (nargs != 3 || !PyLong_Check(argv[1]) || !PyCallable_Check(argv[2])) {
        PyErr_SetString(PyExc_TypeError, "exceeds(value, budget: int, hook)");
        return NULL;
    }
    Py_ssize_t left = PyLong_AsSsize_t(argv[1]);
    if (left == -1 && PyErr_Occurred()) {
        return NULL;
    }
    int r = measure(argv[0], &left, 0, argv[2]);
    if (r == -2) {
        return NULL;
    }
    return PyLong_FromLong(r < 0 ? -1 : left < 0);
}

/* Whether the first `n` characters of `s` hold a lone surrogate (not valid UTF-8 as is). */
static int
has_surrogate(PyObject *s, Py_ssize_t n)
{
    int kind = PyUnicode_KIND(s);
    if (kind == PyUnicode_1BYTE_KIND) {
        return 0;
    }
    const void *data = PyUnicode_DATA(s);
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        if (c >= 0xD800 && c <= 0xDFFF) {
            return 1;
        }
    }
    return 0;
}

/* Decimal digits of a 64-bit value (an estimate of its JSON for the copy below). */
static Py_ssize_t
digits_of(long long n)
{
    unsigned long long u = n < 0 ? 0ULL - (unsigned long long)n : (unsigned long long)n;
    Py_ssize_t d = n < 0 ? 2 : 1;
    while (u >= 10) {
        u /= 10;
        d++;
    }
    return d;
}

/* What head_of() returns for a value it leaves to the Python copy. */
static char unknown_marker;
#define UNKNOWN ((PyObject *)&unknown_marker)

/* The state of one copy: bytes left to fill, where it was first cut, the hook and redactor. */
typedef struct {
    Py_ssize_t left;
    int cut;            /* depth of the first string or container cut short, or -1 */
    PyObject *redactor; /* whose cache says which keys are secret */
    PyObject *hook;     /* Encoder._part(obj, left) -> (plain data, cut), or NULL */
} Copy;

static inline void
mark_cut(Copy *c, int depth)
{
    if (c->cut < 0) {
        c->cut = depth;
    }
    if (c->left >= 0) {
        c->left = -1;
    }
}

/*
 * _encoding._clean with a budget, for built-in types: the beginning of `v` as plain data, its
 * JSON beginning exactly as `v`'s does, c->cut saying where it differs (see _encoding._Budget):
 * the first items of containers, the first characters of strings, secret keys' values
 * "[REDACTED]". Charges are estimates of the JSON size (they decide only how long the copy is).
 * Objects of other types go through the hook. A new reference; UNKNOWN (no exception) for what
 * only the Python copy does (a key the redactor must be asked about, a string with a lone
 * surrogate, an int beyond 64 bits, a dict changed meanwhile); NULL on an error.
 */
static PyObject *
head_of(PyObject *v, Copy *c, int depth)
{
    PyTypeObject *t = Py_TYPE(v);
    if (v == Py_None || t == &PyBool_Type) {
        c->left -= 5;
        return Py_NewRef(v);
    }
    if (t == &PyFloat_Type) {
        c->left -= 19; /* the length of most doubles' JSON, and a comma */
        return Py_NewRef(v);
    }
    if (t == &PyLong_Type) {
        int overflow = 0;
        long long n = PyLong_AsLongLongAndOverflow(v, &overflow);
        if (overflow != 0) {
            return UNKNOWN; /* beyond 64 bits: written as text by the Python copy */
        }
        c->left -= digits_of(n) + 1;
        return Py_NewRef(v);
    }
    if (t == &PyUnicode_Type) {
        Py_ssize_t n = PyUnicode_GET_LENGTH(v);
        Py_ssize_t keep = c->left <= n + 2 ? (c->left > 0 ? c->left : 0) : n;
        if (has_surrogate(v, keep)) {
            return UNKNOWN;
        }
        c->left -= keep + 3;
        if (keep == n) {
            return Py_NewRef(v);
        }
        mark_cut(c, depth);
        return PyUnicode_Substring(v, 0, keep);
    }
    if (depth > MAX_DEPTH) {
        return UNKNOWN;
    }
    if (t == &PyList_Type || t == &PyTuple_Type) {
        PyObject *out = PyList_New(0);
        if (out == NULL) {
            return NULL;
        }
        c->left -= 2;
        Py_ssize_t i = 0;
        for (; i < PySequence_Fast_GET_SIZE(v) && c->left >= 0; i++) {
            PyObject *item = Py_NewRef(PySequence_Fast_GET_ITEM(v, i));
            PyObject *copy = head_of(item, c, depth + 1);
            Py_DECREF(item);
            if (copy == NULL || copy == UNKNOWN) {
                Py_DECREF(out);
                return copy;
            }
            int r = PyList_Append(out, copy);
            Py_DECREF(copy);
            if (r < 0) {
                Py_DECREF(out);
                return NULL;
            }
        }
        if (i < PySequence_Fast_GET_SIZE(v)) {
            mark_cut(c, depth);
        }
        return out;
    }
    if (t == &PyDict_Type) {
        PyObject *out = PyDict_New();
        if (out == NULL) {
            return NULL;
        }
        c->left -= 2;
        Py_ssize_t size = PyDict_GET_SIZE(v), pos = 0;
        PyObject *key, *item;
        while (PyDict_Next(v, &pos, &key, &item)) {
            if (c->left < 0) {
                mark_cut(c, depth);
                break;
            }
            int secret = PyUnicode_CheckExact(key) ? cached_secret(c->redactor, key) : -1;
            if (secret < 0) {
                Py_DECREF(out);
                return UNKNOWN;
            }
            c->left -= PyUnicode_GET_LENGTH(key) + 4;
            Py_INCREF(key);
            Py_INCREF(item);
            PyObject *copy = secret ? Py_NewRef(redacted) : head_of(item, c, depth + 1);
            int r = copy == NULL || copy == UNKNOWN ? 0 : PyDict_SetItem(out, key, copy);
            Py_DECREF(key);
            Py_DECREF(item);
            if (copy == NULL || copy == UNKNOWN || r < 0 || PyDict_GET_SIZE(v) != size) {
                if (copy != UNKNOWN) {
                    Py_XDECREF(copy);
                }
                Py_DECREF(out);
                return copy == NULL || r < 0 ? NULL : UNKNOWN;
            }
            Py_DECREF(copy);
        }
        return out;
    }
    if (c->hook == NULL) {
        return UNKNOWN;
    }
    /* Not plain data: Encoder._part makes it so (records, arrays, reprs...). */
    PyObject *r = PyObject_CallFunction(c->hook, "On", v, c->left);
    if (r == NULL) {
        return NULL;
    }
    if (!PyTuple_CheckExact(r) || PyTuple_GET_SIZE(r) != 2) {
        Py_DECREF(r);
        PyErr_SetString(PyExc_TypeError, "the copy hook must return (data, cut)");
        return NULL;
    }
    PyObject *data = PyTuple_GET_ITEM(r, 0);
    int cut = PyObject_IsTrue(PyTuple_GET_ITEM(r, 1));
    PyObject *copy;
    if (cut < 0) {
        copy = NULL;
    }
    else if (data == v) {
        c->left -= 8; /* written by orjson as it is (a datetime, a UUID...) */
        copy = Py_NewRef(v);
    }
    else if (Py_TYPE(data) != &PyUnicode_Type && Py_TYPE(data) != &PyDict_Type
             && Py_TYPE(data) != &PyList_Type && !is_leaf(data)) {
        copy = UNKNOWN;
    }
    else {
        copy = head_of(data, c, depth);
        if (copy != NULL && copy != UNKNOWN && cut) {
            mark_cut(c, depth);
        }
    }
    Py_DECREF(r);
    return copy;
}

/* is_secret(redactor, key) -> True, False, or None where only Python decides (the C word
 * rule and the redactor's cache; for tests). */
static PyObject *
sp_is_secret(PyObject *module, PyObject *const *argv, Py_ssize_t nargs)
{
    if (nargs != 2 || !installed || Py_TYPE(argv[0]) != redactor_type
        || !PyUnicode_CheckExact(argv[1])) {
        PyErr_SetString(PyExc_TypeError, "is_secret(redactor: Redactor, key: str)");
        return NULL;
    }
    int secret = c_is_secret(argv[0], argv[1]);
    if (secret < 0) {
        Py_RETURN_NONE;
    }
    return PyBool_FromLong(secret);
}

/* head(value, budget, redactor, hook) -> (the beginning of value as plain data, cut depth),
 * or None where only the Python copy does it (see head_of). */
static PyObject *
sp_head(PyObject *module, PyObject *const *argv, Py_ssize_t nargs)
{
    if (nargs != 4 || !PyLong_Check(argv[1]) || !installed || Py_TYPE(argv[2]) != redactor_type
        || !PyCallable_Check(argv[3])) {
        PyErr_SetString(PyExc_TypeError, "head(value, budget: int, redactor: Redactor, hook)");
        return NULL;
    }
    Copy c = {PyLong_AsSsize_t(argv[1]), -1, argv[2], argv[3]};
    if (c.left == -1 && PyErr_Occurred()) {
        return NULL;
    }
    PyObject *out = head_of(argv[0], &c, 0);
    if (out == UNKNOWN) {
        Py_RETURN_NONE;
    }
    if (out == NULL) {
        return NULL;
    }
    PyObject *pair = Py_BuildValue("(Ni)", out, c.cut);
    return pair;
}

/* Whether encoded JSON holds "://" (a URL, maybe with a password to mask). */
static int
has_url(const char *buf, Py_ssize_t size)
{
    /* By its first '/': rare in JSON, where ':' follows every key. */
    const char *p = buf, *end = buf + size;
    while ((p = memchr(p, '/', (size_t)(end - p))) != NULL) {
        if (p > buf && p[-1] == ':' && end - p >= 2 && p[1] == '/') {
            return 1;
        }
        p++;
    }
    return 0;
}

/* JSON text for `value`, as Encoder.encode does; the rare cases call Encoder.encode itself. */
static PyObject *
encode_value(PyObject *encoder, PyObject *value, Py_ssize_t nested_from)
{
    PyTypeObject *cls = Py_TYPE(value);
    PyObject *data;
    PyObject *quick = quick_json(value, as_ssize(SLOT(encoder, E_limit), -1), nested_from > 0);
    if (quick != NULL) {
        return quick;
    }
    int scalar = cls == &PyLong_Type || cls == &PyFloat_Type || cls == &PyBool_Type || value == Py_None;
    if (!scalar) {
        /* Over the limit by its lower bound, or of a type measured in Python: Encoder.encode
         * copies only its beginning (the cost stays bounded by the limit). */
        Py_ssize_t limit = as_ssize(SLOT(encoder, E_limit), -1);
        if (limit < 0 || exceeds_c(value, limit) != 0) {
            goto slow;
        }
    }
    if (scalar) {
        PyObject *stack[1] = {value};
        data = PyObject_Vectorcall(dumps, stack, 1, NULL);
    }
    else {
        /* orjson's fallback, masking with this encoder's secret words; held, as it runs
         * Python code */
        PyObject *dflt = Py_XNewRef(SLOT(encoder, E_default));
        if (dflt == NULL) {
            goto slow;
        }
        PyObject *stack[3] = {value, dflt, dumps_options};
        data = PyObject_Vectorcall(dumps, stack, 3, NULL);
        Py_DECREF(dflt);
    }
    if (data == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_Exception)) {
            return NULL; /* KeyboardInterrupt and the like, raised by the fallback */
        }
        PyErr_Clear(); /* what orjson refuses, Encoder.encode writes */
        goto slow;
    }
    if (!PyBytes_CheckExact(data)) {
        Py_DECREF(data);
        goto slow;
    }
    const char *buf = PyBytes_AS_STRING(data);
    Py_ssize_t size = PyBytes_GET_SIZE(data);
    if (!scalar) {
        Py_ssize_t limit = as_ssize(SLOT(encoder, E_limit), -1);
        if (limit < 0 || size > limit) {
            Py_DECREF(data);
            goto slow;
        }
        if (has_url(buf, size)) {
            Py_DECREF(data);
            goto slow; /* a URL whose password Encoder.encode masks */
        }
        if (cls != &PyUnicode_Type && size > nested_from
            && memchr(buf + nested_from, '{', (size_t)(size - nested_from)) != NULL) {
            PyObject *redactor = Py_XNewRef(SLOT(encoder, E_redactor));
            if (redactor == NULL) {
                Py_DECREF(data);
                goto slow;
            }
            PyObject *hit = PyObject_CallMethodOneArg(redactor, s_may_contain, data);
            Py_DECREF(redactor);
            if (hit == NULL) {
                Py_DECREF(data);
                return NULL;
            }
            int secret = PyObject_IsTrue(hit);
            Py_DECREF(hit);
            if (secret != 0) {
                Py_DECREF(data);
                if (secret < 0) {
                    return NULL;
                }
                goto slow;
            }
        }
    }
    PyObject *text = PyUnicode_DecodeUTF8(buf, size, NULL);
    Py_DECREF(data);
    return text;
slow:;
    PyObject *nested = PyLong_FromSsize_t(nested_from);
    if (nested == NULL) {
        return NULL;
    }
    PyObject *stack[3] = {encoder, value, nested};
    PyObject *text2 = PyObject_VectorcallMethod(s_encode, stack, 3 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
    Py_DECREF(nested);
    return text2;
}

/* -- CallSpec: what the C path needs of one decorated function ----------------------------- */

/* What emit_inputs() returns when it wrote the JSON. */
static char done_marker;
#define DONE ((PyObject *)&done_marker)

/* Parameters bound here at most; a function with more is bound by the Python binder. */
#define MAX_PARAMS 64

typedef struct {
    PyObject_HEAD
    PyObject *func;            /* the decorated function */
    PyObject *spec;            /* its _spec.Spec */
    PyObject *names;           /* tuple: every parameter, in declaration order */
    PyObject *defaults;        /* tuple: each one's default, or inspect.Parameter.empty */
    PyObject *bind;            /* Spec.bind, for what is not bound here */
    PyObject *fallback;        /* the pure-Python traced call */
    PyObject *fallback_method; /* the same, taking its first argument as the instance */
    Py_ssize_t nnames, npos, nposonly, var_pos, var_kw; /* var_*: index in names, or -1 */
    char captured[MAX_PARAMS]; /* per parameter: in the inputs (not excluded by the user) */
    int drop_first;            /* the first parameter is named self/cls: left out */
    int method;                /* the first argument is always the instance: left out */
    int python_bind;           /* bind every call through `bind` (wrapt wrappers) */
} CallSpec;

static int
callspec_traverse(CallSpec *self, visitproc visit, void *arg)
{
    Py_VISIT(self->func);
    Py_VISIT(self->spec);
    Py_VISIT(self->names);
    Py_VISIT(self->defaults);
    Py_VISIT(self->bind);
    Py_VISIT(self->fallback);
    Py_VISIT(self->fallback_method);
    return 0;
}

/* Not the type's tp_clear: a CallSpec is never cleared while something may still call
 * through it (TracedFunction and TracedCoroutine, which break the cycles it is part of, use
 * it without checking each field). Only its dealloc releases them. */
static int
callspec_clear(CallSpec *self)
{
    Py_CLEAR(self->func);
    Py_CLEAR(self->spec);
    Py_CLEAR(self->names);
    Py_CLEAR(self->defaults);
    Py_CLEAR(self->bind);
    Py_CLEAR(self->fallback);
    Py_CLEAR(self->fallback_method);
    return 0;
}

static void
callspec_dealloc(CallSpec *self)
{
    PyObject_GC_UnTrack(self);
    callspec_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* The index of `name` (None: -1) in `names`, or -2 if it is not there. */
static Py_ssize_t
name_index(PyObject *names, PyObject *name)
{
    if (name == Py_None) {
        return -1;
    }
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(names); i++) {
        if (PyTuple_GET_ITEM(names, i) == name) {
            return i;
        }
    }
    return -2;
}

/* A count from the plan: an int in [0, bound]; -1 with an exception otherwise. */
static Py_ssize_t
plan_count(PyObject *value, Py_ssize_t bound)
{
    Py_ssize_t n = PyLong_Check(value) ? PyLong_AsSsize_t(value) : -1;
    if (n == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (n < 0 || n > bound) {
        PyErr_SetString(PyExc_ValueError, "CallSpec: a count of the plan is out of range");
        return -1;
    }
    return n;
}

/*
 * CallSpec(func, spec, plan, bind, fallback, fallback_method, method, python_bind): plan is
 * _binding.Binder.plan(): (names, npos, posonly, defaults, var_pos, var_kw, captured,
 * drop_first).
 */
static int
callspec_init(CallSpec *self, PyObject *args, PyObject *kwds)
{
    PyObject *func, *spec, *plan, *bind, *fallback, *fallback_method;
    int method = 0, python_bind = 0;
    static char *kwlist[] = {"func", "spec", "plan", "bind", "fallback", "fallback_method",
                             "method", "python_bind", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOO!OOO|pp:CallSpec", kwlist, &func, &spec,
                                     &PyTuple_Type, &plan, &bind, &fallback, &fallback_method,
                                     &method, &python_bind)) {
        return -1;
    }
    if (!installed || Py_TYPE(spec) != spec_type) {
        PyErr_SetString(PyExc_TypeError, "CallSpec needs an installed Spec");
        return -1;
    }
    if (self->spec != NULL) {
        PyErr_SetString(PyExc_TypeError, "CallSpec is initialised once");
        return -1;
    }
    if (PyTuple_GET_SIZE(plan) != 8) {
        PyErr_SetString(PyExc_TypeError, "CallSpec: plan must be Binder.plan()");
        return -1;
    }
    PyObject *names = PyTuple_GET_ITEM(plan, 0), *defaults = PyTuple_GET_ITEM(plan, 3);
    PyObject *captured = PyTuple_GET_ITEM(plan, 6);
    if (!PyTuple_CheckExact(names) || !PyTuple_CheckExact(defaults)
        || !PyTuple_CheckExact(captured) || PyTuple_GET_SIZE(defaults) != PyTuple_GET_SIZE(names)
        || PyTuple_GET_SIZE(captured) != PyTuple_GET_SIZE(names)) {
        PyErr_SetString(PyExc_TypeError, "CallSpec: plan must be Binder.plan()");
        return -1;
    }
    Py_ssize_t nnames = PyTuple_GET_SIZE(names);
    for (Py_ssize_t i = 0; i < nnames; i++) {
        if (!PyUnicode_CheckExact(PyTuple_GET_ITEM(names, i))) {
            PyErr_SetString(PyExc_TypeError, "CallSpec: names must be str");
            return -1;
        }
    }
    Py_ssize_t npos = plan_count(PyTuple_GET_ITEM(plan, 1), nnames);
    Py_ssize_t nposonly = npos < 0 ? -1 : plan_count(PyTuple_GET_ITEM(plan, 2), npos);
    if (nposonly < 0) {
        return -1;
    }
    Py_ssize_t var_pos = name_index(names, PyTuple_GET_ITEM(plan, 4));
    Py_ssize_t var_kw = name_index(names, PyTuple_GET_ITEM(plan, 5));
    if (var_pos < -1 || var_kw < -1) {
        PyErr_SetString(PyExc_ValueError, "CallSpec: *args/**kwargs must be among the names");
        return -1;
    }
    int drop_first = PyObject_IsTrue(PyTuple_GET_ITEM(plan, 7));
    if (drop_first < 0) {
        return -1;
    }
    /* more parameters than bound here: the Python binder binds every call */
    python_bind = python_bind || nnames > MAX_PARAMS;
    for (Py_ssize_t i = 0; i < nnames && i < MAX_PARAMS; i++) {
        int keep = PyObject_IsTrue(PyTuple_GET_ITEM(captured, i));
        if (keep < 0) {
            return -1;
        }
        self->captured[i] = (char)keep;
    }
    self->func = Py_NewRef(func);
    self->spec = Py_NewRef(spec);
    self->names = Py_NewRef(names);
    self->defaults = Py_NewRef(defaults);
    self->bind = Py_NewRef(bind);
    self->fallback = Py_NewRef(fallback);
    self->fallback_method = Py_NewRef(fallback_method);
    self->nnames = nnames;
    self->npos = npos;
    self->nposonly = nposonly;
    self->var_pos = var_pos;
    self->var_kw = var_kw;
    self->drop_first = drop_first;
    self->method = method;
    self->python_bind = python_bind;
    return 0;
}

static PyTypeObject CallSpecType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "execlog._speedups.CallSpec",
    .tp_basicsize = sizeof(CallSpec),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "What the C path needs of one decorated function.",
    .tp_traverse = (traverseproc)callspec_traverse,
    .tp_dealloc = (destructor)callspec_dealloc,
    .tp_init = (initproc)callspec_init,
    .tp_new = PyType_GenericNew,
};

/* Whether the first argument of this spec's calls is left out of the inputs. */
static inline int
skips_first(CallSpec *cs)
{
    return cs->method || cs->drop_first;
}

/* The pure-Python traced call for a call with `nargs` positional arguments. */
static inline PyObject *
python_path(CallSpec *cs, Py_ssize_t nargs)
{
    return cs->method && nargs > 0 ? cs->fallback_method : cs->fallback;
}

/*
 * A call's arguments bound to parameters, as _binding.Binder.bind binds them: borrowed
 * pointers into the caller's arguments (which the caller keeps alive).
 */
typedef struct {
    PyObject *vals[MAX_PARAMS];      /* the argument of each parameter, or NULL */
    PyObject *const *extra;          /* positional arguments beyond the parameters (*args) */
    Py_ssize_t nextra;
    Py_ssize_t to_var_kw[MAX_PARAMS]; /* keyword arguments for **kwargs (index in kwnames) */
    Py_ssize_t n_var_kw;
    Py_ssize_t undeclared[MAX_PARAMS]; /* keyword arguments the function does not take */
    Py_ssize_t n_undeclared;
} Binding;

/* The parameter a keyword argument binds to (not positional-only, not the star parameters), or -1.
 * Exact str compare without running Python code. */
static Py_ssize_t
keyword_index(CallSpec *cs, PyObject *key)
{
    PyObject *const *names = &PyTuple_GET_ITEM(cs->names, 0);
    for (Py_ssize_t i = cs->nposonly; i < cs->nnames; i++) {
        if (names[i] == key) {
            return i == cs->var_pos || i == cs->var_kw ? -1 : i;
        }
    }
    for (Py_ssize_t i = cs->nposonly; i < cs->nnames; i++) {
        if (i != cs->var_pos && i != cs->var_kw && PyUnicode_Compare(names[i], key) == 0) {
            return i;
        }
    }
    return -1;
}

/* Bind a vectorcall's arguments; 0, or -1 (no exception) for a call to bind in Python. */
static int
bind_call(CallSpec *cs, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames, Binding *b)
{
    Py_ssize_t nkw = kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames);
    if (cs->python_bind || nkw > MAX_PARAMS) {
        return -1;
    }
    memset(b->vals, 0, sizeof(PyObject *) * (size_t)cs->nnames);
    Py_ssize_t given = nargs < cs->npos ? nargs : cs->npos;
    for (Py_ssize_t i = 0; i < given; i++) {
        b->vals[i] = args[i];
    }
    b->extra = args + given;
    b->nextra = nargs - given;
    b->n_var_kw = b->n_undeclared = 0;
    for (Py_ssize_t j = 0; j < nkw; j++) {
        PyObject *key = PyTuple_GET_ITEM(kwnames, j);
        if (!PyUnicode_CheckExact(key)) {
            return -1;
        }
        Py_ssize_t at = keyword_index(cs, key);
        if (at >= 0) {
            b->vals[at] = args[nargs + j];
        }
        else if (cs->var_kw >= 0) {
            b->to_var_kw[b->n_var_kw++] = j;
        }
        else {
            b->undeclared[b->n_undeclared++] = j;
        }
    }
    return 0;
}

/* Whether `name` is among the spec's secret parameters (Spec._secret_params). */
static int
is_secret_param(PyObject *secrets, PyObject *name)
{
    Py_ssize_t n = PyTuple_GET_SIZE(secrets);
    for (Py_ssize_t i = 0; i < n; i++) {
        if (PyTuple_GET_ITEM(secrets, i) == name) {
            return 1;
        }
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *s = PyTuple_GET_ITEM(secrets, i);
        if (PyUnicode_CheckExact(s) && PyUnicode_Compare(s, name) == 0) {
            return 1;
        }
    }
    return 0;
}

/* Whether an undeclared keyword is one the user excluded (a positional-only name). */
static int
is_excluded(CallSpec *cs, PyObject *key)
{
    for (Py_ssize_t i = 0; i < cs->nnames; i++) {
        if (!cs->captured[i] && PyUnicode_Compare(PyTuple_GET_ITEM(cs->names, i), key) == 0) {
            return 1;
        }
    }
    return 0;
}

/*
 * The inputs of a bound call, in the order Binder.bind gives them, either written straight
 * as JSON into `out` (`out` != NULL: 1 when every value is one put_scalar writes and every
 * nested key's secrecy is cached; 0 otherwise, no exception) or built as a dict (`out` ==
 * NULL: a new reference, or NULL with an exception). Secret parameters and keys are
 * "[REDACTED]" either way. Building the dict may run Python code (the redactor).
 */
static PyObject *
emit_inputs(CallSpec *cs, Binding *b, PyObject *const *args, Py_ssize_t nargs,
            PyObject *kwnames, PyObject *secrets, PyObject *redactor, Out *out)
{
    PyObject *dict = NULL;
    int first = 1;
    if (out == NULL) {
        dict = PyDict_New();
        if (dict == NULL) {
            return NULL;
        }
    }
    else if (!put(out, "{", 1)) {
        return NULL;
    }
    int skip = skips_first(cs) && cs->npos > 0;
    for (Py_ssize_t p = 0; p < cs->nnames; p++) {
        if (!cs->captured[p] || (p == 0 && skip)) {
            continue;
        }
        PyObject *name = PyTuple_GET_ITEM(cs->names, p);
        int secret = PyTuple_GET_SIZE(secrets) != 0 && is_secret_param(secrets, name);
        if (p == cs->var_pos || p == cs->var_kw) {
            int positional = p == cs->var_pos;
            Py_ssize_t n = positional ? b->nextra : b->n_var_kw;
            PyObject *value = NULL;
            if (out != NULL) {
                if (!put_member_key(out, &first, name)) {
                    return NULL;
                }
                if (secret) {
                    if (!put_scalar(out, redacted)) {
                        return NULL;
                    }
                    continue;
                }
                if (!put(out, positional ? "[" : "{", 1)) {
                    return NULL;
                }
                for (Py_ssize_t i = 0; i < n; i++) {
                    if (i > 0 && !put(out, ",", 1)) {
                        return NULL;
                    }
                    if (positional) {
                        if (!put_scalar(out, b->extra[i])) {
                            return NULL;
                        }
                        continue;
                    }
                    PyObject *key = PyTuple_GET_ITEM(kwnames, b->to_var_kw[i]);
                    int hidden = cached_secret(redactor, key);
                    if (hidden < 0 || !put_ascii(out, key) || !put(out, ":", 1)
                        || !put_scalar(out, hidden ? redacted : args[nargs + b->to_var_kw[i]])) {
                        return NULL;
                    }
                }
                if (!put(out, positional ? "]" : "}", 1)) {
                    return NULL;
                }
                continue;
            }
            if (secret) {
                value = Py_NewRef(redacted);
            }
            else if (positional) {
                value = PyList_New(n);
                for (Py_ssize_t i = 0; value != NULL && i < n; i++) {
                    PyList_SET_ITEM(value, i, Py_NewRef(b->extra[i]));
                }
            }
            else {
                value = PyDict_New();
                for (Py_ssize_t i = 0; value != NULL && i < n; i++) {
                    if (PyDict_SetItem(value, PyTuple_GET_ITEM(kwnames, b->to_var_kw[i]),
                                       args[nargs + b->to_var_kw[i]]) < 0) {
                        Py_CLEAR(value);
                    }
                }
            }
            if (value == NULL || PyDict_SetItem(dict, name, value) < 0) {
                Py_XDECREF(value);
                Py_DECREF(dict);
                return NULL;
            }
            Py_DECREF(value);
            continue;
        }
        PyObject *value = b->vals[p];
        if (value == NULL) {
            value = PyTuple_GET_ITEM(cs->defaults, p);
            if (value == empty_marker) {
                continue; /* not given, no default: the call raises TypeError */
            }
        }
        if (secret) {
            value = redacted;
        }
        if (out != NULL) {
            if (!put_member_key(out, &first, name) || !put_scalar(out, value)) {
                return NULL;
            }
        }
        else if (PyDict_SetItem(dict, name, value) < 0) {
            Py_DECREF(dict);
            return NULL;
        }
    }
    for (Py_ssize_t i = 0; i < b->n_undeclared; i++) {
        PyObject *key = PyTuple_GET_ITEM(kwnames, b->undeclared[i]);
        PyObject *value = args[nargs + b->undeclared[i]];
        if (is_excluded(cs, key)) {
            continue;
        }
        if (out != NULL) {
            int hidden = cached_secret(redactor, key);
            if (hidden < 0 || !put_member_key(out, &first, key)
                || !put_scalar(out, hidden ? redacted : value)) {
                return NULL;
            }
            continue;
        }
        int hidden = key_is_secret(redactor, key);
        if (hidden < 0 || PyDict_SetItem(dict, key, hidden ? redacted : value) < 0) {
            Py_DECREF(dict);
            return NULL;
        }
    }
    if (out != NULL) {
        return put(out, "}", 1) ? DONE : NULL; /* DONE: a non-NULL "written" */
    }
    return dict;
}

/*
 * The inputs of a call as JSON text (Spec.bind, then Encoder.encode with nested_from=1): a
 * new reference, NULL with no exception for the Python path, or NULL with an exception.
 */
static PyObject *
inputs_json(CallSpec *cs, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
            PyObject *encoder)
{
    Binding b;
    PyObject *secrets = SLOT(cs->spec, S_secret_params);
    PyObject *redactor = SLOT(encoder, E_redactor);
    if (secrets == NULL || !PyTuple_CheckExact(secrets) || redactor == NULL
        || bind_call(cs, args, nargs, kwnames, &b) < 0) {
        return NULL;
    }
    /* Held wherever something may allocate or run Python code that replaces them: the quick
     * way below runs no Python code and allocates only to load the redactor's words, for a
     * keyword argument bound to **kwargs or to no parameter; building the dict allocates and
     * may run the redactor. */
    int held = b.n_var_kw != 0 || b.n_undeclared != 0;
    if (held) {
        Py_INCREF(secrets);
        Py_INCREF(redactor);
    }
    char buffer[QUICK_BUFFER];
    Out out = out_within(buffer, as_ssize(SLOT(encoder, E_limit), -1));
    if (emit_inputs(cs, &b, args, nargs, kwnames, secrets, redactor, &out) != NULL) {
        if (held) {
            Py_DECREF(secrets);
            Py_DECREF(redactor);
        }
        return out_text(buffer, &out);
    }
    if (!held) {
        Py_INCREF(secrets);
        Py_INCREF(redactor);
    }
    PyObject *dict = emit_inputs(cs, &b, args, nargs, kwnames, secrets, redactor, NULL);
    Py_DECREF(secrets);
    Py_DECREF(redactor);
    if (dict == NULL) {
        return NULL;
    }
    PyObject *text = encode_value(encoder, dict, 1);
    Py_DECREF(dict);
    return text;
}

/*
 * Whether os.environ holds EXECLOG_PARENT_ID or EXECLOG_CORRELATION_ID (looked up in its dict,
 * env_data): two look-ups, remembered until that dict changes, which a dict watcher reports on
 * 3.12+ and the dict's version tag shows before. 1 also when it cannot tell (the Python path
 * then decides).
 */
static int env_lineage = -1; /* -1: not known */
#if PY_VERSION_HEX >= 0x030C0000
static int env_watcher = -1;

static int
env_changed(PyDict_WatchEvent event, PyObject *dict, PyObject *key, PyObject *new_value)
{
    env_lineage = -1;
    return 0;
}
#else
static uint64_t env_version = 0;
#endif

static int
env_may_hold_lineage(void)
{
    if (env_data == NULL) {
        return 1;
    }
#if PY_VERSION_HEX >= 0x030C0000
    int cacheable = env_watcher >= 0;
#else
    int cacheable = 1;
    if (((PyDictObject *)env_data)->ma_version_tag != env_version) {
        env_lineage = -1;
    }
#endif
    if (cacheable && env_lineage >= 0) {
        return env_lineage;
    }
    /* bytes keys: the look-ups run no Python code, so nothing changes the dict meanwhile */
    int parent = PyDict_Contains(env_data, env_parent);
    int correlation = parent == 0 ? PyDict_Contains(env_data, env_correlation) : 0;
    int sampled = parent == 0 && correlation == 0 && env_sampled != NULL
                      ? PyDict_Contains(env_data, env_sampled)
                      : 0;
    if (parent < 0 || correlation < 0 || sampled < 0) {
        PyErr_Clear();
        return 1;
    }
#if PY_VERSION_HEX < 0x030C0000
    env_version = ((PyDictObject *)env_data)->ma_version_tag;
#endif
    env_lineage = parent || correlation || sampled;
    return env_lineage;
}

/*
 * Whether a root starting now joins an OpenTelemetry span (the Python path then records its
 * ids in the tags): only asked while `opentelemetry.trace` is imported, one dict look-up
 * otherwise. 1 also when it cannot tell.
 */
static int
otel_span_current(void)
{
    if (root_probe == NULL) {
        return 0;
    }
    PyObject *loaded = PyDict_GetItemWithError(PyImport_GetModuleDict(), s_otel_trace);
    if (loaded == NULL) {
        if (PyErr_Occurred()) {
            PyErr_Clear();
            return 1;
        }
        return 0;
    }
    if (!otel_var_resolved && root_var_getter != NULL) {
        /* once: the ContextVar OpenTelemetry keeps its current Context in (None: unknown) */
        PyObject *var = PyObject_CallNoArgs(root_var_getter);
        if (var == NULL) {
            PyErr_Clear();
        }
        else if (PyContextVar_CheckExact(var)) {
            otel_var = var;
        }
        else {
            Py_DECREF(var);
        }
        otel_var_resolved = 1;
    }
    if (otel_var != NULL) {
        /* an empty Context (the common case) holds no span: no call into Python */
        PyObject *value = NULL;
        if (PyContextVar_Get(otel_var, NULL, &value) < 0) {
            PyErr_Clear();
            return 1;
        }
        if (value == NULL) {
            return 0;
        }
        int empty = PyDict_Check(value) && PyDict_GET_SIZE(value) == 0;
        Py_DECREF(value);
        if (empty) {
            return 0;
        }
    }
    PyObject *answer = PyObject_CallNoArgs(root_probe);
    if (answer == NULL) {
        PyErr_Clear();
        return 1;
    }
    int current = answer != Py_False;
    Py_DECREF(answer);
    return current;
}

/*
 * The lineage a new execution takes from `outer`, the current one: its id, correlation and run
 * id as strong references (None, NULL, None for a root). 0: take the Python path (the current
 * value is not one of ours, or a root's lineage comes from the environment, or it joins an
 * OpenTelemetry span).
 */
static int
outer_lineage(PyObject *outer, PyObject **parent_id, PyObject **correlation, PyObject **run_id)
{
    if (outer == NULL || outer == Py_None) {
        if (env_may_hold_lineage() || otel_span_current()) {
            return 0;
        }
        *parent_id = Py_NewRef(Py_None);
        *correlation = NULL;
        *run_id = Py_NewRef(Py_None);
        return 1;
    }
    PyObject *id = NULL, *corr = NULL, *run = NULL;
    if (Py_TYPE(outer) == handle_type) {
        id = SLOT(outer, H_execution_id);
        corr = SLOT(outer, H_correlation);
        run = SLOT(outer, H_run_id);
    }
    if (id == NULL || corr == NULL || run == NULL) {
        return 0;
    }
    *parent_id = Py_NewRef(id);
    *correlation = Py_NewRef(corr);
    *run_id = Py_NewRef(run);
    return 1;
}

/* The offset from the monotonic clock to wall time (Recorder.clock_offset, see _clock.py). */
static inline int
clock_offset(int64_t *out)
{
    return read_ns(SLOT(recorder, R_clock_offset), out);
}

/* -- head sampling --------------------------------------------------------------------------- */

/* xorshift64*: the draw of a root's sampling decision. Seeded from the clock and the pid when
 * sampling is set up and again in a forked child (pthread_atfork), so processes draw apart. */
static uint64_t rng_state = 0;

static void
rng_seed(void)
{
    uint64_t seed = (uint64_t)clock_ns(CLOCK_MONOTONIC) ^ ((uint64_t)getpid() << 32)
                    ^ (uint64_t)clock_ns(CLOCK_REALTIME);
    rng_state = seed == 0 ? 0x9E3779B97F4A7C15ULL : seed;
}

static inline double
rng_next(void)
{
    uint64_t x = rng_state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rng_state = x;
    return (double)((x * 0x2545F4914F6CDD1DULL) >> 11) * (1.0 / 9007199254740992.0);
}

/* A root's decision: 1 recorded (the rate is 1), 2 recorded (drawn), 0 not, -1 take the Python
 * path (it decides, then: an unusual rate, always_record_errors, an inherited decision, or a
 * caller that cannot run an unsampled root itself). `rate`: the callable's or the block's own
 * (borrowed; NULL or None: the configured one). */
static inline int
root_sampled(PyObject *rate, PyObject *config, int can_run_unsampled)
{
    if (rate == NULL || rate == Py_None) {
        rate = SLOT(config, C_sample_rate);
    }
    if (rate == NULL || !PyFloat_CheckExact(rate)) {
        return -1;
    }
    double r = PyFloat_AS_DOUBLE(rate);
    if (r >= 1.0) {
        return 1;
    }
    if (!can_run_unsampled || unsampled == NULL || SLOT(config, C_always_record_errors) != Py_False
        || env_may_hold_lineage()) {
        return -1; /* an inherited decision is read on the Python path */
    }
    return r > 0.0 && rng_next() < r ? 2 : 0;
}

/* Whether `outer`, the current value, marks an unsampled tree (calls there run as they are). */
static inline int
is_unsampled(PyObject *outer)
{
    return outer != NULL && unsampled_type != NULL && Py_TYPE(outer) == unsampled_type;
}

/*
 * A decision drawn in C for a root that then went to the Python path (a value it could not
 * encode, say): the Python path takes it (take_decision) rather than drawing again, which
 * would record such roots at rate squared. Keyed by thread; read and written with the GIL.
 */
static unsigned long decided_thread = 0;
static int decided = -1;

/* Leave `sampled` (1 recorded, 0 not) for the Python path beginning this root on this thread. */
static inline void
leave_decision(int sampled)
{
    decided_thread = PyThread_get_thread_ident();
    decided = sampled;
}

/* A traced call's arguments: as a vectorcall passes them (`instance` NULL; the caller keeps
 * them alive), or as a wrapt wrapper does (the bound `instance`, an args tuple, a kwargs dict). */
typedef struct {
    PyObject *const *args;
    Py_ssize_t nargs;
    PyObject *kwnames;
    PyObject *instance, *tuple, *dict;
} Call;

/*
 * Create, start and make current a handle for one call (Spec.begin's common case); `outer` is
 * the current value (borrowed; NULL: unset). Returns a new reference, or NULL with no exception
 * set: take the Python path (nothing has changed then, so that path starts from scratch and
 * reports any real error itself). With `can_run_unsampled`, a root that head sampling leaves
 * out returns `unsampled` (a new reference): the caller runs the call with it current.
 */
static PyObject *
begin_call(CallSpec *cs, const Call *call, PyObject *outer, int can_run_unsampled,
           int64_t *started_out, int64_t *t0_out, int *drew)
{
    State st;
    PyObject *spec = cs->spec;
    if (!read_state(&st)) {
        return NULL;
    }
    int is_root = outer == NULL || outer == Py_None;
    if (is_root) {
        /* head sampling first: an unsampled root needs no writer, nor its inputs */
        int sampled = root_sampled(SLOT(spec, S_sample_rate), st.config, can_run_unsampled);
        if (sampled <= 0) {
            return sampled < 0 ? NULL : Py_NewRef(unsampled);
        }
        *drew = sampled == 2;
    }
    if (st.writer == Py_None) {
        return NULL;
    }
    if (!same_int(SLOT(spec, S_encoder_generation), SLOT(recorder, R_config_generation))) {
        return NULL;
    }
    PyObject *capture = SLOT(spec, S_capture_inputs);
    if (capture == NULL || capture == Py_None) {
        capture = SLOT(st.config, C_capture_inputs);
    }
    if (capture != Py_True && capture != Py_False) {
        return NULL;
    }
    /*
     * Strong references to everything used after binding and encoding the inputs: those call
     * back into Python (the binder, a __repr__, the redactor), which may reconfigure, replace
     * the function's encoder or let another thread do so.
     */
    PyObject *encoder = NULL, *parent_id = NULL, *correlation = NULL, *run_id = NULL,
             *trigger = NULL, *name = NULL, *kind = NULL, *handle = NULL;
    PyObject *eid = NULL, *started_obj = NULL, *thread = NULL, *inputs = NULL, *live = NULL;
    PyObject *t0 = NULL;
    encoder = Py_XNewRef(SLOT(spec, S_encoder));
    name = Py_XNewRef(SLOT(spec, S_name));
    kind = Py_XNewRef(SLOT(spec, S_kind));
    trigger = Py_XNewRef(SLOT(spec, S_trigger));
    if (encoder == NULL || Py_TYPE(encoder) != encoder_type || name == NULL || kind == NULL) {
        goto fallback;
    }
    /* a root or a child of one of ours; anything else (capturing a value) takes the Python path */
    if (!outer_lineage(outer, &parent_id, &correlation, &run_id)) {
        goto fallback;
    }
    if (is_unset(trigger)) {
        Py_XSETREF(trigger, Py_NewRef(parent_id == Py_None ? s_manual : s_child));
    }
    thread = thread_id();
    if (thread == NULL) {
        goto fallback;
    }
    if (capture != Py_True) {
        inputs = Py_NewRef(Py_None);
    }
    else if (call->instance == NULL) {
        inputs = inputs_json(cs, call->args, call->nargs, call->kwnames, encoder);
    }
    else {
        /* Spec.bind: the Python binder (it tells the instance apart), secret names redacted */
        PyObject *stack[3] = {call->instance, call->tuple, call->dict};
        PyObject *bound = PyObject_Vectorcall(cs->bind, stack, 3, NULL);
        if (bound != NULL && PyDict_Check(bound)) {
            inputs = encode_value(encoder, bound, 1);
        }
        Py_XDECREF(bound);
    }
    if (inputs == NULL) {
        goto fallback;
    }
    /* Read after the callbacks above: the live set and generation may have been replaced.
     * Held: allocating the handle can run the garbage collector, and with it a __del__. */
    int64_t offset;
    if (!read_state(&st) || st.writer == Py_None || !clock_offset(&offset)) {
        goto fallback;
    }
    live = Py_XNewRef(SLOT(st.channel, CH_live));
    PyObject *generation = Py_XNewRef(SLOT(recorder, R_generation));
    if (live == NULL || !PySet_CheckExact(live) || generation == NULL) {
        Py_XDECREF(generation);
        goto fallback;
    }
    handle = handle_type->tp_alloc(handle_type, 0); /* object.__new__ without its argument checks */
    /* The user's code starts now: both times of the row derive from this reading. */
    int64_t t0_ns = clock_ns(CLOCK_MONOTONIC);
    int64_t started = t0_ns + offset;
    eid = make_id(started);
    started_obj = PyLong_FromLongLong(started);
    t0 = PyLong_FromLongLong(t0_ns);
    if (handle == NULL || eid == NULL || started_obj == NULL || t0 == NULL) {
        Py_DECREF(generation);
        Py_XDECREF(handle);
        handle = NULL;
        goto fallback;
    }
    remember_ns(started_obj, started);
    remember_ns(t0, t0_ns);
    set_slot(handle, H_name, name);
    set_slot(handle, H_kind, kind);
    set_slot_borrowed(handle, H_execution_id, eid);
    set_slot(handle, H_parent, parent_id);
    set_slot(handle, H_correlation, correlation == NULL ? Py_NewRef(eid) : correlation);
    set_slot(handle, H_run_id, run_id);
    set_slot(handle, H_trigger, trigger);
    set_slot(handle, H_encoder, encoder);
    set_slot(handle, H_started, started_obj);
    set_slot(handle, H_thread, thread);
    set_slot(handle, H_generation, generation);
    set_slot(handle, H_inputs, inputs);
    set_slot_borrowed(handle, H_state, one);
    set_slot_borrowed(handle, H_extra, Py_False);
    set_slot_borrowed(handle, H_token, Py_None);
    set_slot(handle, H_t0, t0);
    Py_DECREF(eid);

    if (PySet_Add(live, handle) < 0) {
        PyErr_Clear();
        Py_DECREF(live);
        Py_DECREF(handle);
        return NULL;
    }
    PyObject *token = PyContextVar_Set(current, handle);
    if (token == NULL) {
        /* Nothing may stay changed for the Python path: not the variable, which 3.11 sets
         * even when it cannot make the token, nor the live set. Only if the variable cannot
         * be put back does the error (a MemoryError) reach the caller. */
        int stuck = restore_current(handle, outer);
        PyObject *type, *value, *tb;
        PyErr_Fetch(&type, &value, &tb);
        if (PySet_Discard(live, handle) < 0) {
            PyErr_Clear();
        }
        PyErr_Restore(type, value, tb);
        if (!stuck && PyErr_ExceptionMatches(PyExc_Exception)) {
            PyErr_Clear();
        }
        Py_DECREF(live);
        Py_DECREF(handle);
        return NULL;
    }
    Py_DECREF(live);
    set_slot(handle, H_token, token);
    *started_out = started;
    *t0_out = t0_ns;
    return handle;

fallback:
    /* Nothing visible has changed: the Python path starts from scratch (and reports a real
     * error itself). KeyboardInterrupt, SystemExit and the like stay raised: the caller
     * returns NULL with them, as the Python path lets them through. */
    if (PyErr_Occurred() && PyErr_ExceptionMatches(PyExc_Exception)) {
        PyErr_Clear();
    }
    Py_XDECREF(encoder);
    Py_XDECREF(name);
    Py_XDECREF(kind);
    Py_XDECREF(trigger);
    Py_XDECREF(parent_id);
    Py_XDECREF(correlation);
    Py_XDECREF(run_id);
    Py_XDECREF(eid);
    Py_XDECREF(started_obj);
    Py_XDECREF(t0);
    Py_XDECREF(thread);
    Py_XDECREF(inputs);
    Py_XDECREF(live);
    return NULL;
}

static PyObject *
begin(CallSpec *cs, const Call *call, PyObject *outer, int can_run_unsampled,
      int64_t *started_out, int64_t *t0_out)
{
    int drew = 0;
    PyObject *handle = begin_call(cs, call, outer, can_run_unsampled, started_out, t0_out, &drew);
    if (handle == NULL && drew && !PyErr_Occurred()) {
        /* drawn "recorded", then left to the Python path: it takes this decision */
        leave_decision(1);
    }
    return handle;
}

/* Report the exception being raised as an internal error; -1 if it must propagate (strict). */
static int
report_internal(void)
{
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    if (tb != NULL && value != NULL) {
        PyException_SetTraceback(value, tb);
    }
    PyObject *r = PyObject_CallOneArg(py_report, value == NULL ? Py_None : value);
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(tb);
    if (r == NULL) {
        return -1;
    }
    Py_DECREF(r);
    return 0;
}

/*
 * The success path (_decorator._complete's common case): close the context, build the row,
 * queue it. Returns 0, or -1 with an exception set when an internal error must propagate.
 */
/* Whether a running handle can end on the fast path (nothing but its row to write). */
static int
can_end_fast(PyObject *handle, int with_result, State *st)
{
    if (!read_state(st) || SLOT(handle, H_state) != one || SLOT(handle, H_extra) != Py_False
        || !same_int(SLOT(handle, H_generation), SLOT(recorder, R_generation))) {
        return 0;
    }
    PyObject *live = SLOT(st->channel, CH_live);
    PyObject *encoder = SLOT(handle, H_encoder);
    return live != NULL && PySet_CheckExact(live) && SLOT(st->channel, CH_queue) != NULL
           && (!with_result || (encoder != NULL && Py_TYPE(encoder) == encoder_type));
}

/*
 * End a handle for which can_end_fast() holds: close its context, build the row, queue it.
 * `result` is a traced call's return value, or NULL for a block (no output).
 * Returns 0, or -1 with an exception set when an internal error must propagate.
 */
static int
end_fast(PyObject *handle, PyObject *result, int64_t started, int64_t t0, int64_t t1, State st)
{
    /* held: resetting the variable allocates, and releasing the token can free objects */
    PyObject *live = Py_NewRef(SLOT(st.channel, CH_live));
    PyObject *token = SLOT(handle, H_token);
    SLOT(handle, H_token) = Py_NewRef(Py_None);
    int reset = reset_current(handle, token);
    PyObject *type = NULL, *value = NULL, *tb = NULL;
    if (reset < 0) {
        PyErr_Fetch(&type, &value, &tb); /* reported once the handle is ended */
    }
    set_slot_borrowed(handle, H_state, two);
    if (PySet_Discard(live, handle) < 0) {
        PyErr_Clear();
    }
    Py_DECREF(live);
    if (reset < 0) {
        PyErr_Restore(type, value, tb);
        if (report_internal() < 0) {
            return -1;
        }
    }

    /* The configuration and the encoder of now, read after the reset (whose allocation can
     * collect garbage and run a gc callback that reconfigures) and held while encoding. */
    PyObject *output;
    PyObject *config = SLOT(recorder, R_config);
    PyObject *capture = config != NULL && Py_TYPE(config) == config_type
                            ? SLOT(config, C_capture_output)
                            : Py_False;
    if (capture == Py_True && result != NULL) {
        /* encoding may run Python code (a __repr__, the redactor): hold what it uses, and
         * read the handle's fields only afterwards */
        PyObject *encoder = Py_XNewRef(SLOT(handle, H_encoder));
        if (encoder == NULL || Py_TYPE(encoder) != encoder_type) {
            Py_XDECREF(encoder);
            PyErr_SetString(PyExc_RuntimeError, "execlog: the execution's encoder was replaced");
            return report_internal();
        }
        output = encode_value(encoder, result, 0);
        Py_DECREF(encoder);
        if (output == NULL) {
            return report_internal();
        }
    }
    else {
        output = Py_NewRef(Py_None);
    }
    /* Both ends from the one clock reading the start was mapped from: children nest. */
    int64_t duration_ns = t1 - t0;
    PyObject *row = PyTuple_New(20);
    PyObject *started_obj = PyLong_FromLongLong(started / 1000);
    PyObject *ended_obj = PyLong_FromLongLong((started + duration_ns) / 1000);
    PyObject *duration_obj = PyFloat_FromDouble((double)duration_ns / 1e6);
    if (row == NULL || started_obj == NULL || ended_obj == NULL || duration_obj == NULL) {
        Py_XDECREF(row);
        Py_XDECREF(started_obj);
        Py_XDECREF(ended_obj);
        Py_XDECREF(duration_obj);
        Py_DECREF(output);
        return report_internal();
    }
#define ITEM(i, v) PyTuple_SET_ITEM(row, i, Py_NewRef((v) == NULL ? Py_None : (v)))
    /* NULL as a float NaN (_storage.NULL): SQLite stores a bound NaN as NULL, and sqlite3 binds
     * a float directly where None goes through its adapter protocol */
#define NULLABLE(i, v) PyTuple_SET_ITEM(row, i, Py_NewRef((v) == NULL || (v) == Py_None ? null_value : (v)))
    ITEM(0, SLOT(handle, H_execution_id));
    ITEM(1, SLOT(handle, H_name));
    ITEM(2, SLOT(handle, H_kind));
    ITEM(3, s_success);
    PyTuple_SET_ITEM(row, 4, started_obj);
    PyTuple_SET_ITEM(row, 5, ended_obj);
    PyTuple_SET_ITEM(row, 6, duration_obj);
    NULLABLE(7, SLOT(handle, H_inputs));
    if (output == Py_None) {
        Py_DECREF(output);
        output = Py_NewRef(null_value);
    }
    PyTuple_SET_ITEM(row, 8, output);
    NULLABLE(9, Py_None);
    NULLABLE(10, Py_None);
    NULLABLE(11, Py_None);
    NULLABLE(12, SLOT(handle, H_parent));
    ITEM(13, SLOT(handle, H_correlation));
    ITEM(14, SLOT(handle, H_trigger));
    NULLABLE(15, SLOT(handle, H_run_id));
    NULLABLE(16, Py_None);
    ITEM(17, SLOT(recorder, R_pid));
    ITEM(18, SLOT(handle, H_thread));
    ITEM(19, SLOT(recorder, R_host));
#undef ITEM
#undef NULLABLE
    /* Only str, int, float and None inside: it can be in no reference cycle. */
    PyObject_GC_UnTrack(row);

    /* The channel and its queue, re-read (encoding the output may have run Python code) and
     * held: looking up `append` allocates a bound method, and a collection then may replace
     * the channel (reset(), a forked child) and free the one read here. */
    if (!read_state(&st)) {
        goto enqueue_slow;
    }
    PyObject *channel = Py_NewRef(st.channel);
    PyObject *queue = Py_XNewRef(SLOT(channel, CH_queue));
    Py_ssize_t limit = known_ssize(&known_limit, SLOT(channel, CH_limit), -1);
    Py_ssize_t length = queue == NULL ? -1 : PyObject_Length(queue);
    if (length < 0) {
        PyErr_Clear();
    }
    PyObject *waiters = SLOT(channel, CH_waiters); /* 0 is the one small int object */
    if (length < 0 || length >= limit || (waiters != zero && as_ssize(waiters, 1) != 0)
        || st.writer == Py_None) {
        Py_XDECREF(queue);
        Py_DECREF(channel);
        goto enqueue_slow;
    }
    if (queue != cached_queue) {
        PyObject *append = PyObject_GetAttr(queue, s_append);
        if (append == NULL) {
            Py_DECREF(queue);
            Py_DECREF(channel);
            Py_DECREF(row);
            return report_internal();
        }
        Py_XSETREF(cached_append, append);
        Py_XSETREF(cached_queue, Py_NewRef(queue));
    }
    PyObject *append = Py_NewRef(cached_append);
    PyObject *r = PyObject_CallOneArg(append, row);
    Py_DECREF(append);
    Py_DECREF(queue);
    Py_DECREF(row);
    if (r == NULL) {
        Py_DECREF(channel);
        return report_internal();
    }
    Py_DECREF(r);
    /* Channel.wake_writer(): the first producer past batch_size since the writer last cleared
       `wake` sets it; the others only read the flag (no call into threading.Event per record). */
    int status = 0;
    if (length + 1 >= known_ssize(&known_batch_size, SLOT(channel, CH_batch_size), 1)
        && SLOT(channel, CH_woken) != Py_True) {
        PyObject *wake = Py_XNewRef(SLOT(channel, CH_wake));
        if (wake != NULL) {
            Py_XSETREF(SLOT(channel, CH_woken), Py_NewRef(Py_True));
            PyObject *done = PyObject_CallMethodNoArgs(wake, s_set);
            Py_DECREF(wake);
            if (done == NULL) {
                status = report_internal();
            }
            Py_XDECREF(done);
        }
    }
    Py_DECREF(channel);
    return status;

enqueue_slow:;
    PyObject *final = PyObject_GetAttr(handle, s_running_written);
    if (final == NULL) {
        PyErr_Clear();
        final = Py_NewRef(Py_False);
    }
    PyObject *stack[3] = {recorder, row, final};
    PyObject *done = PyObject_VectorcallMethod(s_enqueue, stack, 2 | PY_VECTORCALL_ARGUMENTS_OFFSET, kw_final);
    Py_DECREF(final);
    Py_DECREF(row);
    if (done == NULL) {
        return report_internal();
    }
    Py_DECREF(done);
    return 0;
}

/* The success path of a traced call (_decorator._complete's common case). */
static int
complete(PyObject *handle, PyObject *result, int64_t started, int64_t t0)
{
    int64_t t1 = clock_ns(CLOCK_MONOTONIC);
    State st;
    if (!can_end_fast(handle, 1, &st)) {
        PyObject *r = PyObject_CallFunctionObjArgs(py_complete, handle, result, NULL);
        if (r == NULL) {
            return -1;
        }
        Py_DECREF(r);
        return 0;
    }
    return end_fast(handle, result, started, t0, t1, st);
}

/* An exception left the call: end the execution through _decorator._end, re-raise it. */
static void
end_with_error(PyObject *handle)
{
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    if (tb != NULL && value != NULL) {
        PyException_SetTraceback(value, tb);
    }
    PyObject *r = PyObject_CallFunctionObjArgs(py_end, handle, value == NULL ? Py_None : value, NULL);
    if (r == NULL) {
        /* an internal error that must propagate (strict mode): chain the user's exception */
        PyObject *t2, *v2, *tb2;
        PyErr_Fetch(&t2, &v2, &tb2);
        PyErr_NormalizeException(&t2, &v2, &tb2);
        if (v2 != NULL && value != NULL) {
            PyException_SetContext(v2, Py_NewRef(value));
        }
        PyErr_Restore(t2, v2, tb2);
        Py_XDECREF(type);
        Py_XDECREF(value);
        Py_XDECREF(tb);
        return;
    }
    Py_DECREF(r);
    PyErr_Restore(type, value, tb);
}

/* A CallSpec made through __init__ (its fields are never NULL then). */
static inline int
is_callspec(PyObject *obj)
{
    return Py_IS_TYPE(obj, &CallSpecType) && ((CallSpec *)obj)->spec != NULL;
}

static int
check_call_args(PyObject *const *args, Py_ssize_t nargs, Py_ssize_t expected)
{
    if (nargs != expected || !is_callspec(args[0])) {
        PyErr_SetString(PyExc_TypeError, "expected (CallSpec, args, kwargs)");
        return -1;
    }
    if (!PyTuple_Check(args[1]) || !PyDict_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError, "args must be a tuple and kwargs a dict");
        return -1;
    }
    return 0;
}

/* The end of a traced call begun by begin(): record `result` (a new reference, or NULL with
 * the call's exception set) and pass it on. */
static PyObject *
end_call(PyObject *handle, PyObject *result, int64_t started, int64_t t0)
{
    if (result == NULL) {
        end_with_error(handle);
        Py_DECREF(handle);
        return NULL;
    }
    int r = complete(handle, result, started, t0);
    Py_DECREF(handle);
    if (r < 0) {
        Py_DECREF(result);
        return NULL;
    }
    return result;
}

/*
 * An unsampled root drawn for a Python caller (a wrapt wrapper): a stand-in of its own made
 * current, the token in its `_token`, as _spec.Spec.begin makes one (the caller ends it with
 * _spec.leave_unsampled). None if that failed with an Exception (nothing current; the Python
 * path begins again and takes this decision), NULL with anything else.
 */
static PyObject *
unsampled_stand_in(void)
{
    PyObject *stand_in = unsampled_type->tp_alloc(unsampled_type, 0);
    if (stand_in == NULL) {
        goto failed;
    }
    PyObject *token = PyContextVar_Set(current, stand_in);
    if (token == NULL) {
        if (restore_current(stand_in, NULL) < 0) {
            Py_DECREF(stand_in); /* still current: the variable holds it */
            return NULL;
        }
        Py_DECREF(stand_in);
        goto failed;
    }
    if (PyObject_SetAttr(stand_in, s_token, token) < 0) {
        PyObject *type, *value, *tb;
        PyErr_Fetch(&type, &value, &tb);
        int still = reset_current(stand_in, token); /* the token released */
        PyErr_Restore(type, value, tb);
        Py_DECREF(stand_in);
        if (still < 0) {
            return NULL;
        }
        goto failed;
    }
    Py_DECREF(token);
    return stand_in;

failed:
    if (!PyErr_ExceptionMatches(PyExc_Exception)) {
        return NULL;
    }
    PyErr_Clear();
    leave_decision(0);
    Py_RETURN_NONE;
}

/* begin() for Python callers: the handle, None for the Python path, or NULL with an exception
 * a callback raised that must propagate (KeyboardInterrupt and the like). `stand_in`: a root
 * drawn unsampled is begun here (unsampled_stand_in), else on the Python path. */
static PyObject *
begin_or_none(CallSpec *cs, PyObject *instance, PyObject *args, PyObject *kwargs, int stand_in)
{
    if (SLOT(recorder, R_enabled) != Py_True) {
        Py_RETURN_NONE;
    }
    int64_t started, t0;
    Call call = {NULL, 0, NULL, instance, args, kwargs};
    PyObject *outer = NULL;
    if (PyContextVar_Get(current, NULL, &outer) < 0) {
        PyErr_Clear();
        Py_RETURN_NONE;
    }
    /* an unsampled tree, or (without `stand_in`) a root to decide: the Python path */
    PyObject *handle =
        is_unsampled(outer) ? NULL : begin(cs, &call, outer, stand_in, &started, &t0);
    Py_XDECREF(outer);
    if (handle == unsampled) { /* a root drawn unsampled (only with `stand_in`) */
        Py_DECREF(handle);
        return unsampled_stand_in();
    }
    if (handle == NULL && !PyErr_Occurred()) {
        Py_RETURN_NONE;
    }
    return handle;
}

/* begin(spec, args, kwargs) -> handle or None (None: take the Python path). */
static PyObject *
sp_begin(PyObject *module, PyObject *const *argv, Py_ssize_t nargs)
{
    if (check_call_args(argv, nargs, 3) < 0) {
        return NULL;
    }
    return begin_or_none((CallSpec *)argv[0], Py_None, argv[1], argv[2], 0);
}

/* begin_bound(spec, instance, args, kwargs) -> handle or None: begin() for a wrapt wrapper,
 * whose `instance` is the bound object (or class, or None). */
static PyObject *
sp_begin_bound(PyObject *module, PyObject *const *argv, Py_ssize_t nargs)
{
    if (nargs != 4 || !is_callspec(argv[0]) || !PyTuple_Check(argv[2])
        || !PyDict_Check(argv[3])) {
        PyErr_SetString(PyExc_TypeError, "expected (CallSpec, instance, args, kwargs)");
        return NULL;
    }
    return begin_or_none((CallSpec *)argv[0], argv[1], argv[2], argv[3], 1);
}

/* complete(handle, result): end a handle begun by begin() after its call returned. */
static PyObject *
sp_complete(PyObject *module, PyObject *const *argv, Py_ssize_t nargs)
{
    if (nargs != 2 || handle_type == NULL || !PyObject_TypeCheck(argv[0], handle_type)) {
        PyErr_SetString(PyExc_TypeError, "expected (ExecutionHandle, result)");
        return NULL;
    }
    PyObject *handle = argv[0];
    int64_t started, t0;
    if (!Py_IS_TYPE(handle, handle_type) /* head sampling's kinds end in Python */
        || !read_ns(SLOT(handle, H_started), &started) || !read_ns(SLOT(handle, H_t0), &t0)) {
        /* not begun by begin(): the general end */
        PyObject *r = PyObject_CallFunctionObjArgs(py_complete, handle, argv[1], NULL);
        if (r == NULL) {
            return NULL;
        }
        Py_DECREF(r);
        Py_RETURN_NONE;
    }
    if (complete(handle, argv[1], started, t0) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/*
 * Strict mode, an internal error being raised after the call: it propagates, with the call's
 * own exception (fetched: type, value, tb; NULL if it returned `result`) as its context.
 */
static PyObject *
raise_over(PyObject *type, PyObject *value, PyObject *tb, PyObject *result)
{
    PyErr_NormalizeException(&type, &value, &tb);
    Py_XDECREF(type);
    Py_XDECREF(tb);
    if (value != NULL) {
        PyObject *t2, *v2, *tb2;
        PyErr_Fetch(&t2, &v2, &tb2);
        PyErr_NormalizeException(&t2, &v2, &tb2);
        if (v2 != NULL) {
            PyException_SetContext(v2, value);
        }
        else {
            Py_DECREF(value);
        }
        PyErr_Restore(t2, v2, tb2);
    }
    Py_XDECREF(result);
    return NULL;
}

/* -- an unsampled root's mark on its context ------------------------------------------------- */

/*
 * An unsampled root runs with `unsampled` current, so that its whole tree follows, including
 * what copies the context (tasks, threads, propagate(), greenlets). PyContextVar_Set and
 * PyContextVar_Reset make that change for about 100 ns (two new HAMTs and a token: five
 * allocations the collector tracks), more than the whole disabled call. On CPython 3.10 to
 * 3.13 (with the GIL) this makes the same change directly: a context holds its variables as
 * an immutable mapping (`ctx_vars`), and the root swaps the caller's mapping for one that adds
 * `current: unsampled`, then swaps it back when the function returns. The added mapping is
 * made by PyContextVar_Set and kept (one pair, `mark_base` and `mark_with`) for the next root
 * whose caller's mapping is that same object, as in a loop of unsampled roots in one context,
 * until the context that made it dies (a weak reference, `mark_owner`), so a pair never keeps
 * a finished request's values alive; set_sampling() drops it too. If the
 * function set a variable, its mapping is left alone and `current` alone is set back, the
 * public way. A context variable caches its value per thread: `current`'s cache is cleared at
 * each swap (no other variable's value changes).
 *
 * The layouts below are CPython's (Include/internal/pycore_context.h) in those versions, and
 * PyThreadState's `context` is public; mark_check() tries them once, when sampling is set up,
 * and anything else (another version, a failed check) takes the public calls.
 */
#if PY_VERSION_HEX >= 0x030A0000 && PY_VERSION_HEX < 0x030E0000 && !defined(Py_GIL_DISABLED)
#define EXECLOG_SWAP_VARS 1
typedef struct {
    PyObject_HEAD
    PyObject *ctx_prev;
    PyObject *ctx_vars;
    PyObject *ctx_weakreflist;
    int ctx_entered;
} ContextLayout;

typedef struct {
    PyObject_HEAD
    PyObject *var_name;
    PyObject *var_default;
    PyObject *var_cached;
    uint64_t var_cached_tsid;
    uint64_t var_cached_tsver;
    Py_hash_t var_hash;
} ContextVarLayout;

#define CTX_VARS(ctx) (((ContextLayout *)(ctx))->ctx_vars)
#define FORGET_CACHED(var) (((ContextVarLayout *)(var))->var_cached = NULL)
#endif

static int layout_checked = 0, swap_vars = 0; /* set by mark_check() */
static PyObject *mark_base, *mark_with;        /* a caller's mapping, and it with the mark */
static PyObject *mark_owner;                   /* a weak reference to the context that made it */
static PyObject *mark_owner_died;              /* its callback: mark_forget_owner() */

/* Drop the kept pair. What it held is released last, when the globals are already clear
 * (a finalizer that runs then may run an unsampled root, and keep a pair of its own). */
static void
mark_forget(void)
{
    PyObject *owner = mark_owner, *base = mark_base, *with = mark_with;
    mark_owner = mark_base = mark_with = NULL;
    Py_XDECREF(owner);
    Py_XDECREF(base);
    Py_XDECREF(with);
}

/* The weak reference's callback: the context that made the kept pair is gone. */
static PyObject *
mark_forget_owner(PyObject *module, PyObject *ref)
{
    if (ref == mark_owner) {
        mark_forget();
    }
    Py_RETURN_NONE;
}

static PyMethodDef mark_owner_died_def = {
    "mark_owner_died", (PyCFunction)mark_forget_owner, METH_O,
    "Drops the unsampled mark kept for a context that is gone."};

/* One unsampled root's mark, from mark_enter() to mark_leave(): the context swapped, its
 * mapping before and with the mark (all strong), or the token of PyContextVar_Set. */
typedef struct {
    PyObject *ctx, *base, *with, *token;
} Mark;

#ifdef EXECLOG_SWAP_VARS
/* The value of `var` where the thread is, through the public call: 1 found (*value borrowed
 * for the check only), 0 not, -1 error. */
static int
mark_probe(PyObject *var, PyObject **value)
{
    if (PyContextVar_Get(var, NULL, value) < 0) {
        return -1;
    }
    Py_XDECREF(*value); /* the check compares it with an object it holds */
    return *value != NULL;
}

/*
 * Whether the layouts are CPython's here: in a fresh context, setting a variable replaces the
 * context's mapping with another of the same type, the variable's name, default and cache sit
 * where they should, and swapping the mappings by hand makes the public read see each value.
 * 1 yes, 0 no (then the public calls are used), -1 error.
 */
static int
mark_check(void)
{
    PyObject *var = PyContextVar_New("execlog_layout_check", NULL);
    PyObject *ctx = PyContext_New();
    if (var == NULL || ctx == NULL) {
        Py_XDECREF(var);
        Py_XDECREF(ctx);
        return -1;
    }
    ContextVarLayout *v = (ContextVarLayout *)var;
    int ok = Py_TYPE(var)->tp_basicsize >= (Py_ssize_t)sizeof(ContextVarLayout)
             && Py_TYPE(ctx)->tp_basicsize >= (Py_ssize_t)sizeof(ContextLayout)
             && v->var_default == NULL && v->var_name != NULL && PyUnicode_Check(v->var_name)
             && PyUnicode_CompareWithASCIIString(v->var_name, "execlog_layout_check") == 0;
    if (!ok || PyContext_Enter(ctx) < 0) {
        Py_DECREF(var);
        Py_DECREF(ctx);
        return ok ? -1 : 0;
    }
    PyObject *before = CTX_VARS(ctx), *after = NULL, *value = NULL;
    ok = PyThreadState_GET()->context == ctx && ((ContextLayout *)ctx)->ctx_entered == 1
         && before != NULL && strcmp(Py_TYPE(before)->tp_name, "hamt") == 0;
    Py_XINCREF(before);
    PyObject *token = ok ? PyContextVar_Set(var, Py_True) : NULL;
    int failed = ok && token == NULL;
    if (token != NULL) {
        after = CTX_VARS(ctx);
        ok = after != before && Py_TYPE(after) == Py_TYPE(before) && v->var_cached == Py_True
             && mark_probe(var, &value) == 1 && value == Py_True;
        if (ok) { /* swap back by hand: the variable reads as unset */
            CTX_VARS(ctx) = before; /* the context holds `before` and `after` is ours... */
            FORGET_CACHED(var);
            ok = mark_probe(var, &value) == 0;
            CTX_VARS(ctx) = after; /* ...and back: it reads True */
            FORGET_CACHED(var);
            ok = ok && mark_probe(var, &value) == 1 && value == Py_True;
        }
        Py_DECREF(token);
    }
    Py_XDECREF(before); /* ours since Py_XINCREF above */
    if (PyErr_Occurred()) {
        failed = 1;
        PyErr_Clear();
    }
    if (PyContext_Exit(ctx) < 0) {
        failed = 1;
        PyErr_Clear();
    }
    Py_DECREF(ctx);
    Py_DECREF(var);
    return failed ? -1 : ok;
}

#endif

/*
 * Make `unsampled` current for an unsampled root. 0; 1 if that failed with an Exception
 * (cleared, nothing changed: take the Python path); -1 with anything else set, to propagate.
 */
static int
mark_enter(Mark *m)
{
    m->ctx = m->base = m->with = m->token = NULL;
    PyObject *ctx = NULL;
#ifdef EXECLOG_SWAP_VARS
    ctx = swap_vars ? PyThreadState_GET()->context : NULL;
    if (ctx != NULL && !PyContext_CheckExact(ctx)) {
        ctx = NULL;
    }
    if (ctx != NULL && CTX_VARS(ctx) == mark_base) { /* the common case: no allocation */
        m->ctx = Py_NewRef(ctx);
        m->base = CTX_VARS(ctx); /* the context's reference, ours until mark_leave() */
        m->with = Py_NewRef(mark_with);
        CTX_VARS(ctx) = Py_NewRef(mark_with);
        FORGET_CACHED(current);
        return 0;
    }
    /* held across PyContextVar_Set, which may collect garbage and so run anything */
    Py_XINCREF(ctx);
    PyObject *base = ctx == NULL ? NULL : Py_NewRef(CTX_VARS(ctx));
#endif
    PyObject *token = PyContextVar_Set(current, unsampled);
    if (token == NULL) {
#ifdef EXECLOG_SWAP_VARS
        Py_XDECREF(base);
        Py_XDECREF(ctx);
#endif
        if (restore_current(unsampled, NULL) < 0 || !PyErr_ExceptionMatches(PyExc_Exception)) {
            return -1;
        }
        PyErr_Clear();
        return 1;
    }
#ifdef EXECLOG_SWAP_VARS
    if (ctx != NULL) { /* kept for the next root called with the same mapping */
        Py_DECREF(token);
        m->ctx = ctx;
        m->base = base;
        m->with = Py_NewRef(CTX_VARS(ctx));
        PyObject *owner =
            mark_owner_died == NULL ? NULL : PyWeakref_NewRef(ctx, mark_owner_died);
        if (owner == NULL) { /* the mark is made: only the pair is not kept */
            PyErr_Clear();
            mark_forget();
            return 0;
        }
        PyObject *old_owner = mark_owner, *old_base = mark_base, *old_with = mark_with;
        mark_owner = owner;
        mark_base = Py_NewRef(base);
        mark_with = Py_NewRef(m->with);
        Py_XDECREF(old_owner);
        Py_XDECREF(old_base);
        Py_XDECREF(old_with);
        return 0;
    }
#endif
    m->token = token;
    return 0;
}

/*
 * Take an unsampled root's mark off (none: nothing to do). Where the mapping is still the
 * marked one, the caller's goes back; where something set a variable since, those values
 * stay and `current` alone goes back to None (a root's outer value), if the root ends in
 * the context it began in (as a reset token is ignored elsewhere). Call with no exception
 * set; 0, or -1 with one set if `unsampled` is still current (to be reported).
 */
static int
mark_leave(Mark *m)
{
    if (m->token != NULL) {
        PyObject *token = m->token;
        m->token = NULL;
        return reset_current(unsampled, token);
    }
    if (m->ctx == NULL) {
        return 0;
    }
    int failed = 0;
#ifdef EXECLOG_SWAP_VARS
    PyObject *ctx = m->ctx, *base = m->base, *with = m->with;
    m->ctx = m->base = m->with = NULL;
    if (CTX_VARS(ctx) == with) {
        CTX_VARS(ctx) = base; /* our reference, the context's again */
        base = with;          /* the context's reference to `with`, released below */
        FORGET_CACHED(current);
    }
    else if (PyThreadState_GET()->context == ctx && is_current(unsampled)) {
        PyObject *token = PyContextVar_Set(current, Py_None);
        if (token == NULL) {
            failed = restore_current(unsampled, NULL) < 0;
            if (!failed) {
                PyErr_Clear(); /* set back after all */
            }
        }
        Py_XDECREF(token);
    }
    Py_DECREF(base);
    Py_DECREF(with);
    Py_DECREF(ctx);
#endif
    return failed ? -1 : 0;
}

/* Drop a mark's references without touching any context (its coroutine was dropped). */
static void
mark_clear(Mark *m)
{
    Py_CLEAR(m->ctx);
    Py_CLEAR(m->base);
    Py_CLEAR(m->with);
    Py_CLEAR(m->token);
}

/*
 * An unsampled root: the function called with `unsampled` current, so that its whole tree
 * follows, including what copies the context (tasks, threads, propagate(), greenlets). If the
 * variable cannot be set, the Python path runs the call (it takes the decision).
 */
static PyObject *
call_unsampled(CallSpec *cs, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    Mark mark;
    int entered = mark_enter(&mark);
    if (entered != 0) {
        if (entered < 0) {
            return NULL;
        }
        leave_decision(0);
        return PyObject_Vectorcall(python_path(cs, nargs), args, nargs, kwnames);
    }
    PyObject *result = PyObject_Vectorcall(cs->func, args, nargs, kwnames);
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    if (mark_leave(&mark) < 0 && report_internal() < 0) {
        return raise_over(type, value, tb, result);
    }
    PyErr_Restore(type, value, tb);
    return result;
}

/* -- async def: a traced coroutine function and the awaitable it returns -------------------- */

/*
 * A traced `async def` is a TracedFunction (below). Calling it calls the function, which creates the
 * function's own coroutine (so a call with bad arguments, and a coroutine never awaited, behave
 * as they do without execlog), and returns a TracedCoroutine that delegates to that coroutine.
 * The execution begins when the TracedCoroutine is first resumed, in the context of whoever
 * runs it, and ends when the function's coroutine returns or raises: what the `async def`
 * wrapper of the Python path does, without a wrapper coroutine and its frame per call.
 *
 * The TracedCoroutine is a proxy in the way wrapt's are: attributes it does not have come from
 * the function's coroutine, and `__class__` says coroutine, so `inspect` and `asyncio` see what
 * they would see without execlog.
 */

/* CORO_UNSAMPLED: an unsampled root, the function's coroutine run with its mark (`mark`) */
enum { CORO_NEW, CORO_TRACED, CORO_PLAIN, CORO_UNSAMPLED, CORO_DONE };

typedef struct {
    PyObject_HEAD
    CallSpec *cs;
    PyObject *inner;   /* the function's coroutine (or the Python path's, see start) */
    PyObject *args;    /* the call's arguments as a vectorcall passes them, until it begins */
    PyObject *kwnames; /* the names of the last ones (keyword arguments), or NULL */
    PyObject *handle;  /* while CORO_TRACED */
    Mark mark;         /* while CORO_UNSAMPLED */
    PyObject *weaklist;
    int64_t started, t0;
    int state;
    int running;       /* inside a call into Python: a reentrant resume is an error */
} TracedCoroutine;

/* What `__await__()` returns to Python code (as a coroutine's own `coroutine_wrapper`): an
 * iterator resuming the coroutine, which itself, like a Python one, is not iterable. */
typedef struct {
    PyObject_HEAD
    TracedCoroutine *coro;
} Awaiter;

static PyTypeObject TracedCoroutineType, AwaiterType;

/* Close a coroutine that was created but never started (silent), keeping any exception set. */
static void
discard_coroutine(PyObject *coro)
{
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyObject *r = PyObject_CallMethodNoArgs(coro, s_close);
    if (r == NULL) {
        PyErr_WriteUnraisable(coro);
    }
    Py_XDECREF(r);
    PyErr_Restore(type, value, tb);
}

/* Raise StopIteration(value): the return of a coroutine resumed through a method. */
static void
stop_with(PyObject *value)
{
    if (value == Py_None) {
        PyErr_SetNone(PyExc_StopIteration);
        return;
    }
    PyObject *exc = PyObject_CallOneArg(PyExc_StopIteration, value);
    if (exc != NULL) {
        PyErr_SetObject(PyExc_StopIteration, exc);
        Py_DECREF(exc);
    }
}

/* The value of the StopIteration being raised (a new reference; the error is cleared), or NULL
 * with the error kept when it is anything else. */
static PyObject *
take_stop_value(void)
{
    if (!PyErr_ExceptionMatches(PyExc_StopIteration)) {
        return NULL;
    }
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    PyObject *result = value == NULL ? Py_NewRef(Py_None) : PyObject_GetAttrString(value, "value");
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(tb);
    return result;
}

/*
 * First resume: begin the execution (CORO_TRACED), mark an unsampled root (CORO_UNSAMPLED),
 * or run untraced (CORO_PLAIN) when disabled or, for anything the C path does not do, run the
 * Python path's coroutine instead of the function's. -1 with an exception set: the coroutine is done.
 */
static int
tcoro_start(TracedCoroutine *self)
{
    PyObject *enabled = SLOT(recorder, R_enabled);
    PyObject *args = self->args, *kwnames = self->kwnames;
    self->args = NULL;
    self->kwnames = NULL;
    if (enabled == Py_False) {
        self->state = CORO_PLAIN;
        Py_DECREF(args);
        Py_XDECREF(kwnames);
        return 0;
    }
    PyObject *const *items = &PyTuple_GET_ITEM(args, 0);
    Py_ssize_t nargs = PyTuple_GET_SIZE(args) - (kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames));
    PyObject *handle = NULL;
    if (enabled == Py_True) {
        PyObject *outer = NULL;
        if (PyContextVar_Get(current, NULL, &outer) < 0) {
            PyErr_Clear();
        }
        else if (is_unsampled(outer)) { /* in an unsampled tree: the function's own coroutine */
            Py_XDECREF(outer);
            self->state = CORO_PLAIN;
            Py_DECREF(args);
            Py_XDECREF(kwnames);
            return 0;
        }
        else {
            Call call = {items, nargs, kwnames, NULL, NULL, NULL};
            self->running = 1;
            handle = begin(self->cs, &call, outer, 1, &self->started, &self->t0);
            self->running = 0;
            Py_XDECREF(outer);
        }
    }
    if (handle == unsampled && handle != NULL) { /* an unsampled root: marked until it ends */
        Py_CLEAR(handle);
        int entered = mark_enter(&self->mark);
        if (entered == 0) {
            self->state = CORO_UNSAMPLED;
            Py_DECREF(args);
            Py_XDECREF(kwnames);
            return 0;
        }
        if (entered > 0) { /* the Python path takes the decision */
            leave_decision(0);
        }
    }
    if (handle != NULL) {
        self->handle = handle;
        self->state = CORO_TRACED;
    }
    else if (!PyErr_Occurred()) {
        /* The Python path from the start: its coroutine instead of the function's. */
        PyObject *fallback = PyObject_Vectorcall(python_path(self->cs, nargs), items, nargs, kwnames);
        discard_coroutine(self->inner);
        if (fallback == NULL) {
            self->state = CORO_DONE;
        }
        else {
            Py_SETREF(self->inner, fallback);
            self->state = CORO_PLAIN;
        }
    }
    else { /* KeyboardInterrupt and the like, raised by a callback */
        discard_coroutine(self->inner);
        self->state = CORO_DONE;
    }
    Py_DECREF(args);
    Py_XDECREF(kwnames);
    return self->state == CORO_DONE ? -1 : 0;
}

/* The function's coroutine returned (`*result`) or raised: end the execution. */
static PySendResult
tcoro_finish(TracedCoroutine *self, PySendResult status, PyObject **result)
{
    PyObject *handle = self->handle;
    self->handle = NULL;
    self->state = CORO_DONE;
    if (status == PYGEN_RETURN) {
        int r = complete(handle, *result, self->started, self->t0);
        Py_DECREF(handle);
        if (r < 0) {
            Py_CLEAR(*result);
            return PYGEN_ERROR;
        }
        return PYGEN_RETURN;
    }
    end_with_error(handle);
    Py_DECREF(handle);
    return PYGEN_ERROR;
}

/* An unsampled root's coroutine ended: its mark comes off, the exception being raised (if
 * any) kept. 0, or -1 with an internal error raised over it (strict mode). */
static int
tcoro_unmark(TracedCoroutine *self)
{
    self->state = CORO_DONE;
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    if (mark_leave(&self->mark) < 0 && report_internal() < 0) {
        raise_over(type, value, tb, NULL);
        return -1;
    }
    PyErr_Restore(type, value, tb);
    return 0;
}

static int
tcoro_check_idle(TracedCoroutine *self)
{
    if (self->running) {
        PyErr_SetString(PyExc_ValueError, "coroutine already executing");
        return -1;
    }
    /* cleared by the garbage collector (a cycle being freed) */
    if (self->inner == NULL || self->cs == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "coroutine was cleared");
        return -1;
    }
    return 0;
}

/* am_send: how `await` and asyncio's tasks resume it. */
static PySendResult
tcoro_send(TracedCoroutine *self, PyObject *arg, PyObject **result)
{
    *result = NULL;
    if (tcoro_check_idle(self) < 0) {
        return PYGEN_ERROR;
    }
    if (self->state == CORO_NEW) {
        if (arg != Py_None) {
            PyErr_SetString(PyExc_TypeError, "can't send non-None value to a just-started coroutine");
            return PYGEN_ERROR;
        }
        if (tcoro_start(self) < 0) {
            return PYGEN_ERROR;
        }
    }
    else if (self->state == CORO_DONE) {
        PyErr_SetString(PyExc_RuntimeError, "cannot reuse already awaited coroutine");
        return PYGEN_ERROR;
    }
    PyObject *inner = Py_NewRef(self->inner); /* held: the call may clear it */
    self->running = 1;
    PySendResult status = PyIter_Send(inner, arg, result);
    self->running = 0;
    Py_DECREF(inner);
    if (status == PYGEN_NEXT) {
        return status;
    }
    if (self->state == CORO_PLAIN) {
        self->state = CORO_DONE;
        return status;
    }
    if (self->state == CORO_UNSAMPLED) {
        if (tcoro_unmark(self) < 0) {
            Py_CLEAR(*result);
            return PYGEN_ERROR;
        }
        return status;
    }
    return tcoro_finish(self, status, result);
}

static PyObject *
tcoro_iternext(TracedCoroutine *self)
{
    PyObject *result;
    PySendResult status = tcoro_send(self, Py_None, &result);
    if (status == PYGEN_RETURN) {
        if (result != Py_None) {
            stop_with(result);
        }
        Py_DECREF(result);
        return NULL;
    }
    return result;
}

static PyObject *
tcoro_send_method(TracedCoroutine *self, PyObject *arg)
{
    PyObject *result;
    PySendResult status = tcoro_send(self, arg, &result);
    if (status == PYGEN_RETURN) {
        stop_with(result);
        Py_DECREF(result);
        return NULL;
    }
    return result;
}

/* throw(exc): into the function's coroutine (asyncio cancels a task this way). */
static PyObject *
tcoro_throw(TracedCoroutine *self, PyObject *const *argv, Py_ssize_t nargs)
{
    if (tcoro_check_idle(self) < 0) {
        return NULL;
    }
    if (nargs < 1 || nargs > 3) {
        PyErr_SetString(PyExc_TypeError, "throw expected 1 to 3 arguments");
        return NULL;
    }
    int state = self->state;
    if (state == CORO_NEW) { /* raised at the start of the unstarted coroutine, unrecorded */
        self->state = CORO_DONE;
        Py_CLEAR(self->args);
        Py_CLEAR(self->kwnames);
    }
    PyObject *stack[4] = {self->inner, nargs > 0 ? argv[0] : NULL, nargs > 1 ? argv[1] : NULL,
                          nargs > 2 ? argv[2] : NULL};
    Py_INCREF(self->inner);
    self->running = 1;
    PyObject *yielded = PyObject_VectorcallMethod(s_throw, stack, (size_t)nargs + 1, NULL);
    self->running = 0;
    Py_DECREF(stack[0]);
    if (yielded != NULL || state != CORO_TRACED) {
        if (yielded == NULL && state == CORO_PLAIN) {
            self->state = CORO_DONE;
        }
        if (yielded == NULL && state == CORO_UNSAMPLED) {
            tcoro_unmark(self); /* NULL either way: the coroutine's exception, or ours */
        }
        return yielded;
    }
    PyObject *value = take_stop_value();
    PyObject *result = value;
    if (tcoro_finish(self, value == NULL ? PYGEN_ERROR : PYGEN_RETURN, &result) == PYGEN_RETURN) {
        stop_with(result);
        Py_DECREF(result);
    }
    return NULL;
}

/* close(): as closing the Python path's wrapper, which records a GeneratorExit. */
static PyObject *
tcoro_close(TracedCoroutine *self, PyObject *unused)
{
    if (tcoro_check_idle(self) < 0) {
        return NULL;
    }
    int state = self->state;
    self->state = CORO_DONE;
    Py_CLEAR(self->args);
    Py_CLEAR(self->kwnames);
    Py_INCREF(self->inner);
    PyObject *inner = self->inner;
    self->running = 1;
    PyObject *r = PyObject_CallMethodNoArgs(inner, s_close);
    self->running = 0;
    Py_DECREF(inner);
    if (state == CORO_UNSAMPLED && tcoro_unmark(self) < 0) {
        Py_XDECREF(r);
        return NULL;
    }
    if (state != CORO_TRACED) {
        return r;
    }
    PyObject *handle = self->handle;
    self->handle = NULL;
    if (r != NULL) {
        Py_DECREF(r);
        PyErr_SetNone(PyExc_GeneratorExit);
    }
    end_with_error(handle);
    Py_DECREF(handle);
    if (r != NULL && PyErr_ExceptionMatches(PyExc_GeneratorExit)) {
        PyErr_Clear();
        Py_RETURN_NONE;
    }
    return NULL;
}

/* Dropped while suspended: closed, as a coroutine is (and its execution recorded as such; an
 * unsampled root's mark taken off after its coroutine's `finally` blocks ran with it). */
static void
tcoro_finalize(TracedCoroutine *self)
{
    if ((self->state != CORO_TRACED && self->state != CORO_UNSAMPLED) || self->running) {
        return;
    }
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyObject *r = tcoro_close(self, NULL);
    if (r == NULL) {
        PyErr_WriteUnraisable((PyObject *)self);
    }
    Py_XDECREF(r);
    PyErr_Restore(type, value, tb);
}

static int
tcoro_traverse(TracedCoroutine *self, visitproc visit, void *arg)
{
    Py_VISIT(self->cs);
    Py_VISIT(self->inner);
    Py_VISIT(self->args);
    Py_VISIT(self->kwnames);
    Py_VISIT(self->handle);
    Py_VISIT(self->mark.ctx);
    Py_VISIT(self->mark.base);
    Py_VISIT(self->mark.with);
    Py_VISIT(self->mark.token);
    return 0;
}

static int
tcoro_clear(TracedCoroutine *self)
{
    Py_CLEAR(self->cs);
    Py_CLEAR(self->inner);
    Py_CLEAR(self->args);
    Py_CLEAR(self->kwnames);
    Py_CLEAR(self->handle);
    mark_clear(&self->mark);
    return 0;
}

static void
tcoro_dealloc(TracedCoroutine *self)
{
    /* Only a suspended traced coroutine has anything to finalise (see tcoro_finalize). */
    if ((self->state == CORO_TRACED || self->state == CORO_UNSAMPLED)
        && PyObject_CallFinalizerFromDealloc((PyObject *)self) < 0) {
        return; /* resurrected */
    }
    PyObject_GC_UnTrack(self);
    if (self->weaklist != NULL) {
        PyObject_ClearWeakRefs((PyObject *)self);
    }
    tcoro_clear(self);
    PyObject_GC_Del(self);
}

/* A second awaiter while one is suspended in it is refused, as a coroutine refuses it. */
static int
tcoro_check_awaitable(TracedCoroutine *self)
{
    if (self->state == CORO_TRACED || self->state == CORO_PLAIN
        || self->state == CORO_UNSAMPLED) {
        PyErr_SetString(PyExc_RuntimeError, "coroutine is being awaited already");
        return -1;
    }
    return 0;
}

/* The am_await slot, which `await` uses: the coroutine itself, which `await` then resumes
 * through am_send (3.10, 3.11) or tp_iternext (3.12+); no object per call. It has no tp_iter,
 * so iter(), `yield from` in a plain generator and collections.abc.Iterator refuse it as they
 * refuse a coroutine; only next() on it (which refuses a coroutine) resumes it, the price of
 * the tp_iternext that 3.12's await needs to avoid a .send() method call per resume. */
static PyObject *
tcoro_await_slot(TracedCoroutine *self)
{
    if (tcoro_check_awaitable(self) < 0) {
        return NULL;
    }
    return Py_NewRef(self);
}

/* __await__() called from Python (`yield from c.__await__()` in a library's own __await__):
 * an Awaiter, iterable as a coroutine's coroutine_wrapper is. */
static PyObject *
tcoro_await(TracedCoroutine *self, PyObject *unused)
{
    if (tcoro_check_awaitable(self) < 0) {
        return NULL;
    }
    Awaiter *awaiter = PyObject_GC_New(Awaiter, &AwaiterType);
    if (awaiter == NULL) {
        return NULL;
    }
    awaiter->coro = (TracedCoroutine *)Py_NewRef(self);
    PyObject_GC_Track(awaiter);
    return (PyObject *)awaiter;
}

/* Attributes it does not have come from the function's coroutine (cr_frame, __name__...). */
static PyObject *
tcoro_getattro(TracedCoroutine *self, PyObject *name)
{
    PyObject *value = PyObject_GenericGetAttr((PyObject *)self, name);
    if (value != NULL || self->inner == NULL || !PyErr_ExceptionMatches(PyExc_AttributeError)) {
        return value;
    }
    PyErr_Clear();
    return PyObject_GetAttr(self->inner, name);
}

static PyObject *
tcoro_repr(TracedCoroutine *self)
{
    PyObject *name = self->inner == NULL ? NULL : PyObject_GetAttrString(self->inner, "__qualname__");
    if (name == NULL) {
        PyErr_Clear();
        name = Py_NewRef(Py_None);
    }
    PyObject *text = PyUnicode_FromFormat("<coroutine object %S at %p>", name, self);
    Py_DECREF(name);
    return text;
}

static PyObject *
tcoro_class(PyObject *self, void *closure)
{
    return Py_NewRef((PyObject *)&PyCoro_Type);
}

static PyGetSetDef tcoro_getset[] = {
    {"__class__", tcoro_class, NULL, "The type it stands in for (coroutine).", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMethodDef tcoro_methods[] = {
    /* METH_COEXIST: this, not the am_await slot's wrapper, is __await__ for Python code */
    {"__await__", (PyCFunction)tcoro_await, METH_NOARGS | METH_COEXIST,
     "__await__(): an iterator resuming it."},
    {"send", (PyCFunction)tcoro_send_method, METH_O, "send(value): resume it."},
    {"throw", (PyCFunction)(void (*)(void))tcoro_throw, METH_FASTCALL,
     "throw(exc): raise exc where it is suspended."},
    {"close", (PyCFunction)tcoro_close, METH_NOARGS, "close(): raise GeneratorExit in it."},
    {NULL, NULL, 0, NULL},
};

static PyAsyncMethods tcoro_as_async = {
    .am_await = (unaryfunc)tcoro_await_slot,
    .am_send = (sendfunc)tcoro_send,
};

static PyTypeObject TracedCoroutineType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "execlog._speedups.TracedCoroutine",
    .tp_basicsize = sizeof(TracedCoroutine),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "A call of a traced `async def`: its coroutine, recorded as one execution.",
    .tp_traverse = (traverseproc)tcoro_traverse,
    .tp_clear = (inquiry)tcoro_clear,
    .tp_dealloc = (destructor)tcoro_dealloc,
    .tp_finalize = (destructor)tcoro_finalize,
    .tp_as_async = &tcoro_as_async,
    .tp_iternext = (iternextfunc)tcoro_iternext,
    .tp_weaklistoffset = offsetof(TracedCoroutine, weaklist),
    .tp_getattro = (getattrofunc)tcoro_getattro,
    .tp_repr = (reprfunc)tcoro_repr,
    .tp_getset = tcoro_getset,
    .tp_methods = tcoro_methods,
};

/* -- the Awaiter: resumes its TracedCoroutine --------------------------------------------- */

/* The coroutine it resumes, held for the call; NULL with RuntimeError if the garbage
 * collector cleared it (a cycle being freed). */
static TracedCoroutine *
awaiter_coro(Awaiter *self)
{
    if (self->coro == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "coroutine was cleared");
        return NULL;
    }
    return (TracedCoroutine *)Py_NewRef(self->coro);
}

static PySendResult
awaiter_send(Awaiter *self, PyObject *arg, PyObject **result)
{
    TracedCoroutine *coro = awaiter_coro(self);
    if (coro == NULL) {
        *result = NULL;
        return PYGEN_ERROR;
    }
    PySendResult status = tcoro_send(coro, arg, result);
    Py_DECREF(coro);
    return status;
}

static PyObject *
awaiter_iternext(Awaiter *self)
{
    TracedCoroutine *coro = awaiter_coro(self);
    PyObject *r = coro == NULL ? NULL : tcoro_iternext(coro);
    Py_XDECREF(coro);
    return r;
}

static PyObject *
awaiter_send_method(Awaiter *self, PyObject *arg)
{
    TracedCoroutine *coro = awaiter_coro(self);
    PyObject *r = coro == NULL ? NULL : tcoro_send_method(coro, arg);
    Py_XDECREF(coro);
    return r;
}

static PyObject *
awaiter_throw(Awaiter *self, PyObject *const *argv, Py_ssize_t nargs)
{
    TracedCoroutine *coro = awaiter_coro(self);
    PyObject *r = coro == NULL ? NULL : tcoro_throw(coro, argv, nargs);
    Py_XDECREF(coro);
    return r;
}

static PyObject *
awaiter_close(Awaiter *self, PyObject *unused)
{
    TracedCoroutine *coro = awaiter_coro(self);
    PyObject *r = coro == NULL ? NULL : tcoro_close(coro, NULL);
    Py_XDECREF(coro);
    return r;
}

static int
awaiter_traverse(Awaiter *self, visitproc visit, void *arg)
{
    Py_VISIT(self->coro);
    return 0;
}

static int
awaiter_clear(Awaiter *self)
{
    Py_CLEAR(self->coro);
    return 0;
}

static void
awaiter_dealloc(Awaiter *self)
{
    PyObject_GC_UnTrack(self);
    Py_CLEAR(self->coro);
    PyObject_GC_Del(self);
}

static PyMethodDef awaiter_methods[] = {
    {"send", (PyCFunction)awaiter_send_method, METH_O, "send(value): resume the coroutine."},
    {"throw", (PyCFunction)(void (*)(void))awaiter_throw, METH_FASTCALL,
     "throw(exc): raise exc in the coroutine."},
    {"close", (PyCFunction)awaiter_close, METH_NOARGS, "close(): close the coroutine."},
    {NULL, NULL, 0, NULL},
};

static PyAsyncMethods awaiter_as_async = {
    .am_send = (sendfunc)awaiter_send,
};

static PyTypeObject AwaiterType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "execlog._speedups.TracedCoroutineAwaiter",
    .tp_basicsize = sizeof(Awaiter),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "What a TracedCoroutine's __await__ returns: the iterator await resumes.",
    .tp_traverse = (traverseproc)awaiter_traverse,
    .tp_clear = (inquiry)awaiter_clear,
    .tp_dealloc = (destructor)awaiter_dealloc,
    .tp_as_async = &awaiter_as_async,
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = (iternextfunc)awaiter_iternext,
    .tp_methods = awaiter_methods,
};

/* A call of a traced `async def`: its coroutine `inner`, wrapped with the call's arguments
 * (`args`: every argument's value, the last ones named by `kwnames`, which may be NULL;
 * references to all three are taken over). */
static PyObject *
wrap_coroutine(CallSpec *cs, PyObject *inner, PyObject *args, PyObject *kwnames)
{
    TracedCoroutine *co = PyObject_GC_New(TracedCoroutine, &TracedCoroutineType);
    if (co == NULL) {
        discard_coroutine(inner);
        Py_DECREF(inner);
        Py_DECREF(args);
        Py_XDECREF(kwnames);
        return NULL;
    }
    co->cs = (CallSpec *)Py_NewRef(cs);
    co->inner = inner;
    co->args = args;
    co->kwnames = kwnames;
    co->handle = NULL;
    co->mark.ctx = co->mark.base = co->mark.with = co->mark.token = NULL;
    co->weaklist = NULL;
    co->started = co->t0 = 0;
    co->state = CORO_NEW;
    co->running = 0;
    PyObject_GC_Track(co);
    return (PyObject *)co;
}

/* -- blocks: `with execution(name)` ----------------------------------------------------------- */

/* Private functions that work on execlog's classes check that install() has run (with
 * EXECLOG_PURE_PYTHON=1 it never does, and the module can still be imported). */
static int
check_installed(void)
{
    if (!installed) {
        PyErr_SetString(PyExc_RuntimeError, "execlog._speedups is not installed");
        return -1;
    }
    return 0;
}

/* new_block(name, kind, inputs, trigger_kind, sample_rate=None) -> ExecutionHandle, as
 * ExecutionHandle.__init__ makes one without parent, context, correlation or run id, and tags;
 * a sample rate of its own (a float from 0 to 1, checked by the caller) in its `__dict__`. */
static PyObject *
sp_new_block(PyObject *module, PyObject *const *argv, Py_ssize_t nargs)
{
    if (check_installed() < 0) {
        return NULL;
    }
    if ((nargs != 4 && nargs != 5) || !PyUnicode_CheckExact(argv[0])
        || !PyUnicode_CheckExact(argv[1])) {
        PyErr_SetString(PyExc_TypeError,
                        "new_block(name: str, kind: str, inputs, trigger_kind, sample_rate=None)");
        return NULL;
    }
    PyObject *handle = handle_type->tp_alloc(handle_type, 0); /* object.__new__ without its argument checks */
    if (handle == NULL) {
        return NULL;
    }
    set_slot_borrowed(handle, H_name, argv[0]);
    set_slot_borrowed(handle, H_kind, argv[1]);
    set_slot_borrowed(handle, H_trigger, argv[3]);
    set_slot_borrowed(handle, H_correlation, empty_str);
    set_slot_borrowed(handle, H_run_id, Py_None);
    set_slot_borrowed(handle, H_execution_id, empty_str);
    set_slot_borrowed(handle, H_parent, Py_None);
    set_slot_borrowed(handle, H_extra, Py_False);
    set_slot_borrowed(handle, H_encoder, Py_None);
    set_slot_borrowed(handle, H_inputs, argv[2]);
    set_slot_borrowed(handle, H_state, zero);
    set_slot_borrowed(handle, H_token, Py_None);
    if (nargs == 5 && argv[4] != Py_None
        && PyObject_GenericSetAttr(handle, s_own_rate, argv[4]) < 0) {
        Py_DECREF(handle);
        return NULL;
    }
    return handle;
}

/* A block's own sample rate (`_sample_rate`: the class default None, or the value in its
 * `__dict__`), borrowed; NULL with an exception set. */
static PyObject *
block_rate(PyObject *handle)
{
    PyObject *rate = PyObject_GetAttr(handle, s_own_rate);
    Py_XDECREF(rate); /* kept alive by the class or by the handle's dict */
    return rate;
}

/* enter_block()'s False (the Python path), which takes the decision drawn, if any. */
static PyObject *
block_to_python(int drew)
{
    if (drew) {
        leave_decision(1);
    }
    Py_RETURN_FALSE;
}

/*
 * A block not recorded (ExecutionHandle._leave_out, and its state inside an unsampled tree):
 * state 3, `sampled` False, and for a root (`root`) the unsampled stand-in made current
 * until the block ends, its token in the handle. True, or False with nothing that matters
 * changed (the Python path then decides again: not recorded), NULL to propagate.
 */
static PyObject *
leave_block_out(PyObject *handle, int root)
{
    if (PyObject_SetAttr(handle, s_sampled, Py_False) < 0) {
        goto failed;
    }
    if (root) {
        PyObject *token = PyContextVar_Set(current, unsampled);
        if (token == NULL) {
            if (restore_current(unsampled, NULL) < 0) {
                return NULL; /* still current: nothing to fall back to */
            }
            goto failed;
        }
        set_slot(handle, H_token, token);
    }
    set_slot_borrowed(handle, H_state, three);
    Py_RETURN_TRUE;

failed:
    if (!PyErr_ExceptionMatches(PyExc_Exception)) {
        return NULL;
    }
    PyErr_Clear();
    if (root) {
        leave_decision(0);
    }
    Py_RETURN_FALSE;
}

/*
 * enter_block(handle) -> bool: ExecutionHandle.__enter__ for a plain block (no parent, context
 * or tags), recorded, left out by head sampling, inside an unsampled tree or begun while
 * recording is off; or False with nothing changed: take the Python path.
 */
static PyObject *
sp_enter_block(PyObject *module, PyObject *handle)
{
    State st;
    PyObject *enabled = SLOT(recorder, R_enabled);
    if (Py_TYPE(handle) != handle_type || SLOT(handle, H_state) != zero
        || SLOT(handle, H_extra) != Py_False || (enabled != Py_True && enabled != Py_False)
        || !read_state(&st)) {
        Py_RETURN_FALSE;
    }
    /* configure(enabled=False): begun and current like any block, never recorded (state 3) */
    int recording = enabled == Py_True;
    int drew = 0; /* a root drawn "recorded": the Python path, if taken, takes the decision */
    {
        /* Before encoding anything: a block inside an unsampled tree, and a root block head
         * sampling leaves out, are not recorded; any other value not ours: the Python path. */
        PyObject *now = NULL;
        if (PyContextVar_Get(current, NULL, &now) < 0) {
            PyErr_Clear();
            Py_RETURN_FALSE;
        }
        int root = now == NULL || now == Py_None;
        int ours = root || Py_TYPE(now) == handle_type;
        int inside_unsampled = is_unsampled(now);
        Py_XDECREF(now);
        if (inside_unsampled) {
            return leave_block_out(handle, 0);
        }
        if (!ours) {
            Py_RETURN_FALSE;
        }
        if (root && recording) {
            PyObject *rate = block_rate(handle);
            if (rate == NULL) {
                PyErr_Clear();
                Py_RETURN_FALSE;
            }
            int sampled = root_sampled(rate, st.config, 1);
            if (sampled <= 0) {
                if (sampled < 0) {
                    Py_RETURN_FALSE;
                }
                return leave_block_out(handle, 1);
            }
            drew = sampled == 2;
        }
    }
    if (recording && st.writer == Py_None) { /* the Python path starts it */
        return block_to_python(drew);
    }
    PyObject *capture = SLOT(st.config, C_capture_inputs);
    PyObject *encoder = SLOT(recorder, R_encoder);
    PyObject *inputs = SLOT(handle, H_inputs);
    if (encoder == NULL || Py_TYPE(encoder) != encoder_type || inputs == NULL
        || (capture != Py_True && capture != Py_False)) {
        return block_to_python(drew);
    }
    /* Encoding may run Python code (a __repr__, the redactor): the encoder and the inputs are
     * held meanwhile, and everything else is read afterwards. */
    Py_INCREF(inputs);
    PyObject *inputs_json;
    if (!recording) {
        inputs_json = Py_NewRef(inputs); /* kept as given, as the Python path does */
    }
    else if (inputs == Py_None || capture == Py_False) {
        inputs_json = Py_NewRef(Py_None);
    }
    else {
        Py_INCREF(encoder);
        inputs_json = encode_value(encoder, inputs, 0);
        Py_DECREF(encoder);
        if (inputs_json == NULL) {
            Py_DECREF(inputs);
            if (PyErr_ExceptionMatches(PyExc_Exception)) {
                PyErr_Clear(); /* the Python path encodes again and reports it */
                return block_to_python(drew);
            }
            return NULL; /* KeyboardInterrupt and the like */
        }
    }
    PyObject *outer = NULL, *live = NULL, *eid = NULL, *started_obj = NULL, *thread = NULL;
    PyObject *t0 = NULL, *parent_id = NULL, *parent_correlation = NULL, *parent_run = NULL;
    PyObject *generation = NULL, *correlation = NULL, *run_id = NULL, *trigger = NULL;
    if (SLOT(handle, H_state) != zero || SLOT(handle, H_extra) != Py_False
        || SLOT(handle, H_inputs) != inputs || SLOT(recorder, R_enabled) != enabled
        || !read_state(&st) || (recording && st.writer == Py_None)) {
        goto fallback;
    }
    /* Held from here: they are used after the allocations below, and the values replaced in
     * the handle's slots are released only at the end (so no __del__ runs in between). */
    live = recording ? Py_XNewRef(SLOT(st.channel, CH_live)) : NULL;
    generation = Py_XNewRef(SLOT(recorder, R_generation));
    correlation = Py_XNewRef(SLOT(handle, H_correlation));
    run_id = Py_XNewRef(SLOT(handle, H_run_id));
    trigger = Py_XNewRef(SLOT(handle, H_trigger));
    if ((recording && (live == NULL || !PySet_CheckExact(live))) || generation == NULL
        || correlation == NULL
        || run_id == NULL || trigger == NULL) {
        goto fallback;
    }
    if (PyContextVar_Get(current, NULL, &outer) < 0) {
        goto fallback;
    }
    if (!outer_lineage(outer, &parent_id, &parent_correlation, &parent_run)) {
        goto fallback;
    }
    int64_t offset;
    if (!clock_offset(&offset)) {
        goto fallback;
    }
    /* The block starts now: both times of its row derive from this reading. */
    int64_t t0_ns = clock_ns(CLOCK_MONOTONIC);
    int64_t started = t0_ns + offset;
    eid = make_id(started);
    started_obj = PyLong_FromLongLong(started);
    thread = thread_id();
    t0 = PyLong_FromLongLong(t0_ns);
    if (eid == NULL || started_obj == NULL || thread == NULL || t0 == NULL) {
        goto fallback;
    }
    remember_ns(started_obj, started);
    remember_ns(t0, t0_ns);
    set_slot(handle, H_started, started_obj);
    set_slot_borrowed(handle, H_execution_id, eid);
    set_slot(handle, H_thread, thread);
    set_slot_borrowed(handle, H_generation, generation);
    set_slot_borrowed(handle, H_parent, parent_id);
    if (PyUnicode_Check(correlation) && PyUnicode_GET_LENGTH(correlation) == 0) {
        int inherit = parent_correlation != NULL && PyUnicode_Check(parent_correlation)
                      && PyUnicode_GET_LENGTH(parent_correlation) > 0;
        set_slot_borrowed(handle, H_correlation, inherit ? parent_correlation : eid);
    }
    if (run_id == Py_None) {
        set_slot_borrowed(handle, H_run_id, parent_run);
    }
    if (trigger == Py_None) {
        set_slot_borrowed(handle, H_trigger, parent_id == Py_None ? s_manual : s_child);
    }
    set_slot(handle, H_inputs, inputs_json);
    set_slot(handle, H_t0, t0);
    set_slot_borrowed(handle, H_state, recording ? one : three);
    if (recording && PySet_Add(live, handle) < 0) {
        /* only MemoryError: the execution is not tracked as running, but still recorded */
        PyErr_Clear();
    }
    PyObject *token = PyContextVar_Set(current, handle);
    if (token == NULL) {
        /* only MemoryError: record it, outside the context (which 3.11 may have set anyway) */
        restore_current(handle, outer);
        PyErr_Clear();
        token = Py_NewRef(Py_None);
    }
    set_slot(handle, H_token, token);
    Py_DECREF(eid);
    Py_XDECREF(live);
    Py_XDECREF(outer);
    Py_DECREF(parent_id);
    Py_XDECREF(parent_correlation);
    Py_DECREF(parent_run);
    Py_DECREF(inputs);
    Py_DECREF(generation);
    Py_DECREF(correlation);
    Py_DECREF(run_id);
    Py_DECREF(trigger);
    Py_RETURN_TRUE;

fallback:
    /* nothing has changed: the Python path starts from scratch */
    Py_XDECREF(generation);
    Py_XDECREF(correlation);
    Py_XDECREF(run_id);
    Py_XDECREF(trigger);
    Py_XDECREF(outer);
    Py_XDECREF(parent_id);
    Py_XDECREF(parent_correlation);
    Py_XDECREF(parent_run);
    Py_XDECREF(live);
    Py_XDECREF(eid);
    Py_XDECREF(started_obj);
    Py_XDECREF(thread);
    Py_XDECREF(t0);
    Py_DECREF(inputs_json);
    Py_DECREF(inputs);
    if (PyErr_Occurred()) {
        if (!PyErr_ExceptionMatches(PyExc_Exception)) {
            return NULL;
        }
        PyErr_Clear();
    }
    return block_to_python(drew);
}

/* exit_block(handle) -> bool: ExecutionHandle.__exit__ without an exception, for a handle
 * with nothing but its row to write; False with nothing changed: take the Python path. */
static PyObject *
sp_exit_block(PyObject *module, PyObject *handle)
{
    int64_t t1 = clock_ns(CLOCK_MONOTONIC);
    State st;
    if (Py_TYPE(handle) != handle_type || !can_end_fast(handle, 0, &st)) {
        Py_RETURN_FALSE;
    }
    int64_t started, t0;
    if (!read_ns(SLOT(handle, H_started), &started) || !read_ns(SLOT(handle, H_t0), &t0)) {
        Py_RETURN_FALSE;
    }
    if (end_fast(handle, NULL, started, t0, t1, st) < 0) {
        return NULL;
    }
    Py_RETURN_TRUE;
}

/* ExecutionHandle.__enter__/__exit__ in C, bound through instancemethod: a plain block's
 * `with` then runs no Python frame of execlog's; the rest calls the Python methods. */
static PyObject *py_enter, *py_exit;

static PyObject *
sp_enter(PyObject *module, PyObject *self)
{
    if (check_installed() < 0) {
        return NULL;
    }
    PyObject *entered = sp_enter_block(module, self);
    if (entered == NULL) {
        return NULL;
    }
    Py_DECREF(entered);
    if (entered == Py_True) {
        return Py_NewRef(self);
    }
    if (py_enter == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "execlog._speedups: block methods not installed");
        return NULL;
    }
    return PyObject_CallOneArg(py_enter, self);
}

static PyObject *
sp_exit(PyObject *module, PyObject *const *argv, Py_ssize_t nargs)
{
    if (check_installed() < 0) {
        return NULL;
    }
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "__exit__(exc_type, exc, tb)");
        return NULL;
    }
    PyObject *handle = argv[0];
    if (Py_TYPE(handle) == handle_type && SLOT(handle, H_state) == three) {
        /* not recorded: only the current execution to put back, if the block set it */
        PyObject *token = SLOT(handle, H_token);
        if (token != NULL && PyContextToken_CheckExact(token)) {
            Py_INCREF(token);
            set_slot_borrowed(handle, H_token, Py_None);
            PyObject *now = is_current(unsampled) ? unsampled : handle;
            if (reset_current(now, token) < 0 && report_internal() < 0) {
                return NULL;
            }
        }
        Py_RETURN_FALSE;
    }
    if (argv[1] == Py_None) {
        PyObject *done = sp_exit_block(module, argv[0]);
        if (done == NULL) {
            return NULL;
        }
        Py_DECREF(done);
        if (done == Py_True) {
            Py_RETURN_FALSE;
        }
    }
    if (py_exit == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "execlog._speedups: block methods not installed");
        return NULL;
    }
    return PyObject_Vectorcall(py_exit, argv, 4, NULL);
}

/* block_methods(enter, exit) -> (__enter__, __exit__): C methods for ExecutionHandle that
 * fall back to the given Python functions. */
static PyObject *
sp_block_methods(PyObject *module, PyObject *const *argv, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyCallable_Check(argv[0]) || !PyCallable_Check(argv[1])) {
        PyErr_SetString(PyExc_TypeError, "block_methods(enter, exit)");
        return NULL;
    }
    take(argv[0], &py_enter);
    take(argv[1], &py_exit);
    PyObject *enter = PyObject_GetAttrString(module, "enter");
    PyObject *exit = PyObject_GetAttrString(module, "exit");
    PyObject *result = NULL;
    if (enter != NULL && exit != NULL) {
        PyObject *m_enter = PyInstanceMethod_New(enter);
        PyObject *m_exit = PyInstanceMethod_New(exit);
        if (m_enter != NULL && m_exit != NULL) {
            result = PyTuple_Pack(2, m_enter, m_exit);
        }
        Py_XDECREF(m_enter);
        Py_XDECREF(m_exit);
    }
    Py_XDECREF(enter);
    Py_XDECREF(exit);
    return result;
}

/* -- traced functions: what a decorated plain function, `async def` or execution() is ----- */

/*
 * A TracedFunction stands in for a function as a `functools.wraps` wrapper does, without a
 * Python frame per call. Kinds:
 *   plain      a traced plain function (target: its CallSpec): begin(), the call, end_call()
 *   coroutine  a traced `async def` (target: its CallSpec): returns a TracedCoroutine
 *   blocks     execution() (target: the Python function): a plain block is made here, any
 *              other call goes to the Python function
 * It is a proxy in the way wrapt's are: attributes it does not have come from the function
 * (`__code__`, `__defaults__`, `__globals__`...), `__class__` says function, it binds to an
 * instance as a function does, and it pickles by qualified name.
 */

enum { FN_PLAIN, FN_COROUTINE, FN_BLOCKS };

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *target;   /* CallSpec (plain, coroutine) or the Python function (blocks) */
    PyObject *wrapped;  /* the function it stands in for */
    PyObject *dict;     /* __name__, __doc__, __wrapped__... (functools.update_wrapper) */
    PyObject *weaklist;
    int kind;
} TracedFunction;

/* Whether execution() makes plain blocks in C (_decorator._native_blocks). */
static int native_blocks = 0;

/* A vectorcall's arguments as one tuple (positional, then keyword values): a new reference. */
static PyObject *
args_tuple(PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    Py_ssize_t n = PyVectorcall_NARGS(nargsf) + (kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames));
    PyObject *tuple = PyTuple_New(n);
    if (tuple == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyTuple_SET_ITEM(tuple, i, Py_NewRef(args[i]));
    }
    return tuple;
}

/* Raises if the garbage collector cleared it (a cycle being freed) and it is called anyway. */
static int
tfunc_check(TracedFunction *self)
{
    if (self->target == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "traced function was cleared");
        return -1;
    }
    return 0;
}

#define OWN_ARGS 16

/*
 * A traced plain function or method: the function is called with the caller's own arguments.
 * They are copied and held until the call returns: the caller's array is borrowed, and Python
 * code run by begin() (a __repr__, the redactor) may drop what the caller held them by
 * (functools.partial's argument tuple, replaced by __setstate__).
 */
static PyObject *
tfunc_plain(TracedFunction *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    if (tfunc_check(self) < 0) {
        return NULL;
    }
    CallSpec *cs = (CallSpec *)self->target;
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    PyObject *enabled = SLOT(recorder, R_enabled);
    if (enabled != Py_True) { /* off: the function itself (anything else: the Python path) */
        return PyObject_Vectorcall(enabled == Py_False ? cs->func : python_path(cs, nargs), args,
                                   nargsf, kwnames);
    }
    PyObject *outer = NULL;
    if (PyContextVar_Get(current, NULL, &outer) < 0) {
        PyErr_Clear();
        return PyObject_Vectorcall(python_path(cs, nargs), args, nargsf, kwnames);
    }
    if (is_unsampled(outer)) { /* in an unsampled tree: the function itself */
        Py_XDECREF(outer);
        return PyObject_Vectorcall(cs->func, args, nargsf, kwnames);
    }
    Py_ssize_t n = nargs + (kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames));
    PyObject *small[OWN_ARGS];
    PyObject **own = n <= OWN_ARGS ? small : PyMem_Malloc((size_t)n * sizeof(PyObject *));
    if (own == NULL) {
        Py_XDECREF(outer);
        return PyErr_NoMemory();
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        own[i] = Py_NewRef(args[i]);
    }
    Py_XINCREF(kwnames);
    int64_t started = 0, t0 = 0;
    Call call = {own, nargs, kwnames, NULL, NULL, NULL};
    PyObject *handle = begin(cs, &call, outer, 1, &started, &t0);
    PyObject *result;
    if (handle == unsampled && handle != NULL) {
        Py_DECREF(handle);
        result = call_unsampled(cs, own, nargs, kwnames);
    }
    else if (handle != NULL) {
        result = end_call(handle, PyObject_Vectorcall(cs->func, own, nargs, kwnames), started, t0);
    }
    else if (PyErr_Occurred()) {
        result = NULL; /* KeyboardInterrupt and the like, raised by a callback */
    }
    else {
        result = PyObject_Vectorcall(python_path(cs, nargs), own, nargs, kwnames);
    }
    Py_XDECREF(outer);
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_DECREF(own[i]);
    }
    Py_XDECREF(kwnames);
    if (own != small) {
        PyMem_Free(own);
    }
    return result;
}

/* A traced `async def`: its coroutine, wrapped; the execution begins when it is first resumed. */
static PyObject *
tfunc_coroutine(TracedFunction *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    if (tfunc_check(self) < 0) {
        return NULL;
    }
    CallSpec *cs = (CallSpec *)self->target;
    PyObject *inner = PyObject_Vectorcall(cs->func, args, nargsf, kwnames);
    if (inner == NULL) {
        /* Arguments the function does not take: the Python path raises that when awaited,
         * and records it, as it does without the accelerator. */
        if (!PyErr_ExceptionMatches(PyExc_Exception)) {
            return NULL;
        }
        PyErr_Clear();
        return PyObject_Vectorcall(python_path(cs, PyVectorcall_NARGS(nargsf)), args, nargsf,
                                   kwnames);
    }
    PyObject *tuple = args_tuple(args, nargsf, kwnames);
    if (tuple == NULL) {
        discard_coroutine(inner);
        Py_DECREF(inner);
        return NULL;
    }
    return wrap_coroutine(cs, inner, tuple, Py_XNewRef(kwnames));
}

/* execution(name, kind=..., inputs=..., trigger_kind=..., sample_rate=...) with nothing else
 * (and a rate that is a float from 0 to 1, or None): made here, as _execution.execution makes
 * it through new_block; anything else goes to that function, which checks it. */
static PyObject *
tfunc_blocks(TracedFunction *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (tfunc_check(self) < 0) {
        return NULL;
    }
    if (!native_blocks || nargs != 1 || !PyUnicode_CheckExact(args[0])) {
        return PyObject_Vectorcall(self->target, args, nargsf, kwnames);
    }
    PyObject *block[5] = {args[0], s_block, Py_None, Py_None, Py_None};
    Py_ssize_t nkw = kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames);
    for (Py_ssize_t i = 0; i < nkw; i++) {
        PyObject *key = PyTuple_GET_ITEM(kwnames, i);
        PyObject *value = args[1 + i];
        int at = key == s_kind               ? 1
                 : key == s_inputs          ? 2
                 : key == s_trigger_kind    ? 3
                 : key == s_sample_rate     ? 4
                                            : 0;
        if (at == 0 || (at == 1 && !PyUnicode_CheckExact(value))
            || (at == 4 && value != Py_None
                && !(PyFloat_CheckExact(value) && PyFloat_AS_DOUBLE(value) >= 0.0
                     && PyFloat_AS_DOUBLE(value) <= 1.0))) {
            return PyObject_Vectorcall(self->target, args, nargsf, kwnames);
        }
        block[at] = value;
    }
    return sp_new_block(NULL, block, 5);
}

static PyObject *
tfunc_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    const char *kind_name;
    PyObject *target;
    if ((kwds != NULL && PyDict_GET_SIZE(kwds) != 0)
        || !PyArg_ParseTuple(args, "sO:TracedFunction", &kind_name, &target)) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_TypeError, "TracedFunction takes no keyword arguments");
        }
        return NULL;
    }
    int kind = strcmp(kind_name, "plain") == 0       ? FN_PLAIN
               : strcmp(kind_name, "coroutine") == 0 ? FN_COROUTINE
               : strcmp(kind_name, "blocks") == 0    ? FN_BLOCKS
                                                     : -1;
    PyObject *wrapped = target;
    if (kind == FN_BLOCKS) {
        if (!PyCallable_Check(target)) {
            PyErr_SetString(PyExc_TypeError, "TracedFunction('blocks', f) needs a callable");
            return NULL;
        }
    }
    else if (kind < 0 || !is_callspec(target) || ((CallSpec *)target)->python_bind) {
        PyErr_SetString(PyExc_TypeError,
                        "TracedFunction(kind, target): kind 'plain' or 'coroutine' with a plain "
                        "function's CallSpec, or 'blocks' with a callable");
        return NULL;
    }
    else {
        wrapped = ((CallSpec *)target)->func;
        /* `coroutine`: an `async def` (a function marked with inspect.markcoroutinefunction
         * may return any awaitable; the Python path awaits it instead) */
        if (kind == FN_COROUTINE
            && (!PyFunction_Check(wrapped)
                || !(((PyCodeObject *)PyFunction_GET_CODE(wrapped))->co_flags & CO_COROUTINE))) {
            PyErr_SetString(PyExc_TypeError, "TracedFunction('coroutine', spec) needs an async def");
            return NULL;
        }
    }
    TracedFunction *self = (TracedFunction *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->kind = kind;
    self->vectorcall = (vectorcallfunc)(kind == FN_PLAIN       ? tfunc_plain
                                        : kind == FN_COROUTINE ? tfunc_coroutine
                                                               : tfunc_blocks);
    self->target = Py_NewRef(target);
    self->wrapped = Py_NewRef(wrapped);
    return (PyObject *)self;
}

static int
tfunc_traverse(TracedFunction *self, visitproc visit, void *arg)
{
    Py_VISIT(self->target);
    Py_VISIT(self->wrapped);
    Py_VISIT(self->dict);
    return 0;
}

static int
tfunc_clear(TracedFunction *self)
{
    Py_CLEAR(self->target);
    Py_CLEAR(self->wrapped);
    Py_CLEAR(self->dict);
    return 0;
}

static void
tfunc_dealloc(TracedFunction *self)
{
    PyObject_GC_UnTrack(self);
    if (self->weaklist != NULL) {
        PyObject_ClearWeakRefs((PyObject *)self);
    }
    tfunc_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
tfunc_call(TracedFunction *self, PyObject *args, PyObject *kwargs)
{
    return PyVectorcall_Call((PyObject *)self, args, kwargs);
}

/* As a function is: bound to an instance when looked up through one. */
static PyObject *
tfunc_descr_get(PyObject *self, PyObject *obj, PyObject *type)
{
    if (obj == NULL || obj == Py_None) {
        return Py_NewRef(self);
    }
    return PyMethod_New(self, obj);
}

/* Attributes it does not have come from the function it stands in for. */
static PyObject *
tfunc_getattro(TracedFunction *self, PyObject *name)
{
    PyObject *value = PyObject_GenericGetAttr((PyObject *)self, name);
    if (value != NULL || self->wrapped == NULL || !PyErr_ExceptionMatches(PyExc_AttributeError)) {
        return value;
    }
    PyErr_Clear();
    return PyObject_GetAttr(self->wrapped, name);
}

static PyObject *
tfunc_repr(TracedFunction *self)
{
    PyObject *name = PyObject_GetAttrString((PyObject *)self, "__qualname__");
    if (name == NULL) {
        return NULL;
    }
    PyObject *text = PyUnicode_FromFormat("<function %S at %p>", name, self);
    Py_DECREF(name);
    return text;
}

static PyObject *
tfunc_class(PyObject *self, void *closure)
{
    return Py_NewRef((PyObject *)&PyFunction_Type);
}

/* Pickled as a function is: by its qualified name. */
static PyObject *
tfunc_reduce(PyObject *self, PyObject *unused)
{
    return PyObject_GetAttrString(self, "__qualname__");
}

static PyGetSetDef tfunc_getset[] = {
    {"__class__", tfunc_class, NULL, "The type it stands in for (function).", NULL},
    {"__dict__", PyObject_GenericGetDict, PyObject_GenericSetDict, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMemberDef tfunc_members[] = {
    {"_execlog_target", T_OBJECT, offsetof(TracedFunction, target), READONLY,
     "The CallSpec (or, for execution(), the Python function) it calls."},
    {NULL, 0, 0, 0, NULL},
};

/*
 * Set in a class body under the name it was defined with: a method. Its first argument (the
 * instance or class) is then left out of the inputs however it is called; a function placed
 * in a class from elsewhere, or wrapped in staticmethod, is not marked.
 */
static PyObject *
tfunc_set_name(TracedFunction *self, PyObject *const *argv, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyUnicode_Check(argv[1])) {
        PyErr_SetString(PyExc_TypeError, "__set_name__(owner, name)");
        return NULL;
    }
    if (self->kind == FN_BLOCKS || self->target == NULL || !is_callspec(self->target)) {
        Py_RETURN_NONE;
    }
    CallSpec *cs = (CallSpec *)self->target;
    PyObject *owner = PyObject_GetAttrString(argv[0], "__qualname__");
    PyObject *defined = PyObject_GetAttrString(cs->func, "__qualname__");
    PyObject *expected = owner == NULL || defined == NULL
                             ? NULL
                             : PyUnicode_FromFormat("%S.%S", owner, argv[1]);
    int same = expected == NULL ? -1 : PyObject_RichCompareBool(expected, defined, Py_EQ);
    Py_XDECREF(owner);
    Py_XDECREF(defined);
    Py_XDECREF(expected);
    if (same < 0) {
        PyErr_Clear(); /* an owner without a qualified name: not ours to judge */
        Py_RETURN_NONE;
    }
    if (same) {
        cs->method = 1;
    }
    Py_RETURN_NONE;
}

static PyMethodDef tfunc_methods[] = {
    {"__reduce__", (PyCFunction)tfunc_reduce, METH_NOARGS, NULL},
    {"__set_name__", (PyCFunction)(void (*)(void))tfunc_set_name, METH_FASTCALL, NULL},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject TracedFunctionType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "execlog._speedups.TracedFunction",
    .tp_basicsize = sizeof(TracedFunction),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL
                | Py_TPFLAGS_METHOD_DESCRIPTOR,
    .tp_doc = "A traced function, coroutine function or execution(), without a wrapper frame.",
    .tp_vectorcall_offset = offsetof(TracedFunction, vectorcall),
    .tp_traverse = (traverseproc)tfunc_traverse,
    .tp_clear = (inquiry)tfunc_clear,
    .tp_dealloc = (destructor)tfunc_dealloc,
    .tp_call = (ternaryfunc)tfunc_call,
    .tp_descr_get = tfunc_descr_get,
    .tp_getattro = (getattrofunc)tfunc_getattro,
    .tp_repr = (reprfunc)tfunc_repr,
    .tp_getset = tfunc_getset,
    .tp_members = tfunc_members,
    .tp_methods = tfunc_methods,
    .tp_dictoffset = offsetof(TracedFunction, dict),
    .tp_weaklistoffset = offsetof(TracedFunction, weaklist),
    .tp_new = tfunc_new,
};

/* native_blocks(on): whether execution() makes plain blocks in C. */
static PyObject *
sp_native_blocks(PyObject *module, PyObject *on)
{
    int value = PyObject_IsTrue(on);
    if (value < 0) {
        return NULL;
    }
    native_blocks = value && installed && py_enter != NULL;
    return PyBool_FromLong(native_blocks);
}

static PyObject *
sp_new_id(PyObject *module, PyObject *arg)
{
    long long t = PyLong_AsLongLong(arg);
    if (t == -1 && PyErr_Occurred()) {
        return NULL;
    }
    return make_id((int64_t)t);
}

static PyObject *
sp_reseed(PyObject *module, PyObject *const *argv, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "reseed(tail, counter)");
        return NULL;
    }
    unsigned long long tail = PyLong_AsUnsignedLongLong(argv[0]);
    if (tail == (unsigned long long)-1 && PyErr_Occurred()) {
        return NULL;
    }
    unsigned long counter = PyLong_AsUnsignedLong(argv[1]);
    if (counter == (unsigned long)-1 && PyErr_Occurred()) {
        return NULL;
    }
    id_tail = (uint64_t)tail & ~0xFFFFULL;
    id_counter = (uint32_t)(counter & 0xFFFFU);
    Py_RETURN_NONE;
}

/* -- install ---------------------------------------------------------------------------------- */

static int
slot_offset(PyTypeObject *type, const char *name, Py_ssize_t *out)
{
    PyObject *descr = PyObject_GetAttrString((PyObject *)type, name);
    if (descr == NULL) {
        return -1;
    }
    int ok = Py_IS_TYPE(descr, &PyMemberDescr_Type);
    if (ok) {
        PyMemberDef *member = ((PyMemberDescrObject *)descr)->d_member;
        ok = member->type == T_OBJECT_EX && !(member->flags & READONLY)
             && PyType_IsSubtype(type, PyDescr_TYPE(descr));
        *out = member->offset;
    }
    Py_DECREF(descr);
    if (!ok) {
        PyErr_Format(PyExc_TypeError, "%s.%s is not a writable object slot", type->tp_name, name);
        return -1;
    }
    return 0;
}

typedef struct {
    const char *name;
    Py_ssize_t *offset;
} SlotSpec;

static int
slot_offsets(PyTypeObject *type, const SlotSpec *specs)
{
    for (; specs->name != NULL; specs++) {
        if (slot_offset(type, specs->name, specs->offset) < 0) {
            return -1;
        }
    }
    return 0;
}

static int
take_type(PyObject *obj, PyTypeObject **out)
{
    if (!PyType_Check(obj)) {
        PyErr_SetString(PyExc_TypeError, "expected a type");
        return -1;
    }
    Py_INCREF(obj);
    Py_XSETREF(*out, (PyTypeObject *)obj);
    return 0;
}

static int
take(PyObject *obj, PyObject **out)
{
    Py_INCREF(obj);
    Py_XSETREF(*out, obj);
    return 0;
}

static PyObject *
sp_install(PyObject *module, PyObject *args, PyObject *kwds)
{
#ifdef EXECLOG_UNSUPPORTED
    PyErr_SetString(PyExc_ImportError, "execlog._speedups supports Linux with the GIL only");
    return NULL;
#else
    static char *kwlist[] = {"handle_type", "recorder", "config_type", "channel_type",
                             "spec_type", "encoder_type", "redactor_type", "current",
                             "dumps", "options", "redacted", "empty", "env_data",
                             "env_keys", "complete", "end", "report", NULL};
    PyObject *o_handle, *o_recorder, *o_config, *o_channel, *o_spec, *o_encoder, *o_redactor,
        *o_current, *o_dumps, *o_options, *o_redacted, *o_empty, *o_env_data,
        *o_env_keys, *o_complete, *o_end, *o_report;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "$OOOOOOOOOOOOOOOOO:install", kwlist,
                                     &o_handle, &o_recorder, &o_config, &o_channel, &o_spec,
                                     &o_encoder, &o_redactor, &o_current, &o_dumps, &o_options, &o_redacted, &o_empty, &o_env_data,
                                     &o_env_keys, &o_complete, &o_end, &o_report)) {
        return NULL;
    }
    if (PyInterpreterState_Get() != PyInterpreterState_Main()) {
        /* module-wide state: one interpreter only; sub-interpreters use the Python path */
        PyErr_SetString(PyExc_ImportError, "execlog._speedups serves the main interpreter only");
        return NULL;
    }
    if (installed) {
        if (o_recorder == recorder) {
            Py_RETURN_NONE; /* the same objects again (a module reloaded): nothing to do */
        }
        PyErr_SetString(PyExc_ImportError, "execlog._speedups is installed for another recorder");
        return NULL;
    }
    if (!PyContextVar_CheckExact(o_current) || !PyUnicode_CheckExact(o_redacted)
        || !(o_env_data == Py_None || PyDict_CheckExact(o_env_data)) || !PyTuple_CheckExact(o_env_keys)
        || PyTuple_GET_SIZE(o_env_keys) != 2) {
        PyErr_SetString(PyExc_TypeError, "install(): unexpected argument types");
        return NULL;
    }
    if (take_type(o_handle, &handle_type) < 0 || take_type(o_config, &config_type) < 0
        || take_type(o_channel, &channel_type) < 0 || take_type(o_spec, &spec_type) < 0
        || take_type(o_encoder, &encoder_type) < 0 || take_type(o_redactor, &redactor_type) < 0) {
        return NULL;
    }
    recorder_type = Py_TYPE(o_recorder);
    const SlotSpec handle_slots[] = {
        {"name", &H_name}, {"kind", &H_kind}, {"execution_id", &H_execution_id},
        {"parent_execution_id", &H_parent}, {"correlation_id", &H_correlation},
        {"run_id", &H_run_id}, {"trigger_kind", &H_trigger}, {"_encoder", &H_encoder},
        {"_started_ns", &H_started}, {"_thread_id", &H_thread}, {"_generation", &H_generation},
        {"_inputs", &H_inputs}, {"_state", &H_state}, {"_extra", &H_extra}, {"_token", &H_token},
        {"_t0", &H_t0}, {NULL, NULL}};
    const SlotSpec recorder_slots[] = {
        {"enabled", &R_enabled}, {"generation", &R_generation},
        {"config_generation", &R_config_generation}, {"config", &R_config},
        {"channel", &R_channel}, {"writer", &R_writer}, {"pid", &R_pid}, {"host", &R_host},
        {"encoder", &R_encoder}, {"clock_offset", &R_clock_offset}, {NULL, NULL}};
    const SlotSpec config_slots[] = {
        {"capture_inputs", &C_capture_inputs}, {"capture_output", &C_capture_output},
        {"sample_rate", &C_sample_rate}, {"always_record_errors", &C_always_record_errors},
        {NULL, NULL}};
    const SlotSpec channel_slots[] = {
        {"queue", &CH_queue}, {"limit", &CH_limit}, {"waiters", &CH_waiters},
        {"batch_size", &CH_batch_size}, {"wake", &CH_wake}, {"woken", &CH_woken},
        {"live", &CH_live}, {NULL, NULL}};
    const SlotSpec spec_slots[] = {
        {"name", &S_name}, {"kind", &S_kind}, {"trigger_kind", &S_trigger},
        {"_encoder", &S_encoder}, {"_encoder_generation", &S_encoder_generation},
        {"_secret_params", &S_secret_params}, {"capture_inputs", &S_capture_inputs},
        {"sample_rate", &S_sample_rate}, {NULL, NULL}};
    const SlotSpec encoder_slots[] = {
        {"limit", &E_limit}, {"redactor", &E_redactor}, {"default", &E_default}, {NULL, NULL}};
    const SlotSpec redactor_slots[] = {
        {"_cache", &RD_cache}, {"words", &RD_words}, {"_exempt", &RD_exempt}, {NULL, NULL}};
    if (slot_offsets(handle_type, handle_slots) < 0
        || slot_offsets(recorder_type, recorder_slots) < 0
        || slot_offsets(config_type, config_slots) < 0
        || slot_offsets(channel_type, channel_slots) < 0
        || slot_offsets(spec_type, spec_slots) < 0
        || slot_offsets(encoder_type, encoder_slots) < 0
        || slot_offsets(redactor_type, redactor_slots) < 0) {
        return NULL;
    }
    if (handle_type->tp_new == NULL || handle_type->tp_new != PyBaseObject_Type.tp_new
        || handle_type->tp_alloc == NULL || (handle_type->tp_flags & Py_TPFLAGS_IS_ABSTRACT)) {
        PyErr_SetString(PyExc_TypeError, "ExecutionHandle must not define __new__");
        return NULL;
    }
    take(o_recorder, &recorder);
    take(o_current, &current);
    take(o_dumps, &dumps);
    take(o_options, &dumps_options);
    take(o_redacted, &redacted);
    take(o_empty, &empty_marker);
    if (o_env_data == Py_None) {
        Py_CLEAR(env_data);
    }
    else {
        take(o_env_data, &env_data);
#if PY_VERSION_HEX >= 0x030C0000
        if (env_watcher < 0) {
            env_watcher = PyDict_AddWatcher(env_changed);
        }
        if (env_watcher >= 0 && PyDict_Watch(env_watcher, env_data) < 0) {
            env_watcher = -1; /* not cached then: looked up on every root */
        }
        PyErr_Clear();
#endif
    }
    take(PyTuple_GET_ITEM(o_env_keys, 0), &env_parent);
    take(PyTuple_GET_ITEM(o_env_keys, 1), &env_correlation);
    take(o_complete, &py_complete);
    take(o_end, &py_end);
    take(o_report, &py_report);
    env_lineage = -1;
    installed = 1;
    Py_RETURN_NONE;
#endif
}

static PyObject *
sp_set_root_probe(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyCallable_Check(args[0]) || !PyCallable_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "set_root_probe(probe, runtime_var): two callables");
        return NULL;
    }
    Py_XSETREF(root_probe, Py_NewRef(args[0]));
    Py_XSETREF(root_var_getter, Py_NewRef(args[1]));
    Py_CLEAR(otel_var);
    otel_var_resolved = 0;
    Py_RETURN_NONE;
}

static void
rng_reseed_child(void)
{
    rng_seed();
}

/* set_sampling(unsampled_type, unsampled, env_key): what head sampling needs (see _sampling). */
static PyObject *
sp_set_sampling(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3 || !PyType_Check(args[0]) || Py_TYPE(args[1]) != (PyTypeObject *)args[0]
        || !PyBytes_CheckExact(args[2])) {
        PyErr_SetString(PyExc_TypeError,
                        "set_sampling(unsampled_type, unsampled, env_key): a type, its instance "
                        "and bytes");
        return NULL;
    }
    if (check_installed() < 0) {
        return NULL;
    }
    static int at_fork = 0;
    if (!at_fork) {
        pthread_atfork(NULL, NULL, rng_reseed_child);
        at_fork = 1;
    }
    rng_seed();
    Py_XSETREF(unsampled_type, (PyTypeObject *)Py_NewRef(args[0]));
    Py_XSETREF(unsampled, Py_NewRef(args[1]));
    Py_XSETREF(env_sampled, Py_NewRef(args[2]));
    env_lineage = -1;
    mark_forget(); /* it marks with the stand-in replaced just now */
    if (mark_owner_died == NULL) {
        mark_owner_died = PyCFunction_New(&mark_owner_died_def, NULL);
        if (mark_owner_died == NULL) {
            PyErr_Clear(); /* then no pair is kept (mark_enter) */
        }
    }
#ifdef EXECLOG_SWAP_VARS
    /* the swap only where the check passed; after an error (a MemoryError) the public calls,
     * which report it where it happens again */
    int layout = mark_check();
    if (layout < 0) {
        PyErr_Clear();
        layout = 0;
    }
    swap_vars = layout_checked = layout;
#endif
    Py_RETURN_NONE;
}

/* take_decision() -> True, False or None: the decision C drew for the root the Python path
 * is now beginning on this thread, if any (taken once). */
static PyObject *
sp_take_decision(PyObject *module, PyObject *unused)
{
    if (decided < 0 || decided_thread != PyThread_get_thread_ident()) {
        Py_RETURN_NONE;
    }
    int value = decided;
    decided = -1;
    return PyBool_FromLong(value);
}

/* swap_context_vars(on=None) -> bool: whether unsampled roots mark their context by swapping
 * its mapping (see mark_enter); `on` False makes them use the public calls, True goes back
 * where the layout check passed. For the tests of both. */
static PyObject *
sp_swap_context_vars(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs > 1) {
        PyErr_SetString(PyExc_TypeError, "swap_context_vars(on=None)");
        return NULL;
    }
    if (nargs == 1 && args[0] != Py_None) {
        int on = PyObject_IsTrue(args[0]);
        if (on < 0) {
            return NULL;
        }
        swap_vars = on && layout_checked;
        if (!swap_vars) {
            mark_forget();
        }
    }
    return PyBool_FromLong(swap_vars);
}

static PyMethodDef methods[] = {
    {"swap_context_vars", (PyCFunction)(void (*)(void))sp_swap_context_vars, METH_FASTCALL,
     "swap_context_vars(on=None) -> bool: whether an unsampled root marks its context by "
     "swapping the context's mapping of variables (False: by PyContextVar_Set; for tests)."},
    {"take_decision", (PyCFunction)sp_take_decision, METH_NOARGS,
     "take_decision() -> True, False or None: the sampling decision C drew for a root it then "
     "left to the Python path on this thread (taken once)."},
    {"set_sampling", (PyCFunction)(void (*)(void))sp_set_sampling, METH_FASTCALL,
     "set_sampling(unsampled_type, unsampled, env_key): the type of the value `current` holds "
     "in an unsampled tree, the one C roots use, and os.environ's key of an inherited decision."},
    {"set_root_probe", (PyCFunction)(void (*)(void))sp_set_root_probe, METH_FASTCALL,
     "set_root_probe(probe, runtime_var): probe() -> bool is asked as a root begins while "
     "opentelemetry.trace is imported and OpenTelemetry's current Context (the ContextVar "
     "runtime_var() returns) is not empty; True sends the call to the Python path."},
    {"begin", (PyCFunction)(void (*)(void))sp_begin, METH_FASTCALL,
     "begin(spec, args, kwargs) -> handle, or None for the Python path."},
    {"begin_bound", (PyCFunction)(void (*)(void))sp_begin_bound, METH_FASTCALL,
     "begin_bound(spec, instance, args, kwargs) -> handle, or None for the Python path."},
    {"complete", (PyCFunction)(void (*)(void))sp_complete, METH_FASTCALL,
     "complete(handle, result): record a successful call begun by begin()."},
    {"new_id", (PyCFunction)sp_new_id, METH_O, "new_id(time_ns) -> a UUIDv7 string."},
    {"exceeds", (PyCFunction)(void (*)(void))sp_exceeds, METH_FASTCALL,
     "exceeds(value, budget) -> 1 if value's JSON is certainly longer, 0 if it may fit, -1."},
    {"is_secret", (PyCFunction)(void (*)(void))sp_is_secret, METH_FASTCALL,
     "is_secret(redactor, key) -> the word rule in C (None: only Python decides)."},
    {"head", (PyCFunction)(void (*)(void))sp_head, METH_FASTCALL,
     "head(value, budget, redactor) -> the beginning of value as plain data, or None."},
    {"enter", (PyCFunction)sp_enter, METH_O,
     "ExecutionHandle.__enter__ (bound through block_methods)."},
    {"exit", (PyCFunction)(void (*)(void))sp_exit, METH_FASTCALL,
     "ExecutionHandle.__exit__ (bound through block_methods)."},
    {"native_blocks", (PyCFunction)sp_native_blocks, METH_O,
     "native_blocks(on) -> bool: whether execution() makes plain blocks in C."},
    {"block_methods", (PyCFunction)(void (*)(void))sp_block_methods, METH_FASTCALL,
     "block_methods(enter, exit) -> (__enter__, __exit__) falling back to the given ones."},
    {"new_block", (PyCFunction)(void (*)(void))sp_new_block, METH_FASTCALL,
     "new_block(name, kind, inputs, trigger_kind, sample_rate=None) -> ExecutionHandle."},
    {"reseed", (PyCFunction)(void (*)(void))sp_reseed, METH_FASTCALL,
     "reseed(tail, counter): set the per-process id tail and counter."},
    {"install", (PyCFunction)(void (*)(void))sp_install, METH_VARARGS | METH_KEYWORDS,
     "install(...): take the slot layout of execlog's classes; raises if unsupported."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "execlog._speedups",
    .m_doc = "The hot path of a traced call, in C (optional).",
    .m_size = -1,
    .m_methods = methods,
};

#define INTERN(var, text)                                \
    do {                                                 \
        (var) = PyUnicode_InternFromString(text);        \
        if ((var) == NULL) {                             \
            return NULL;                                 \
        }                                                \
    } while (0)

PyMODINIT_FUNC
PyInit__speedups(void)
{
    if (PyType_Ready(&CallSpecType) < 0 || PyType_Ready(&TracedFunctionType) < 0
        || PyType_Ready(&TracedCoroutineType) < 0 || PyType_Ready(&AwaiterType) < 0) {
        return NULL;
    }
    INTERN(s_is_secret, "is_secret");
    INTERN(s_append, "append");
    INTERN(s_encode, "encode");
    INTERN(s_may_contain, "may_contain");
    INTERN(s_set, "set");
    INTERN(s_enqueue, "enqueue");
    INTERN(s_running_written, "_running_written");
    INTERN(s_final, "final");
    INTERN(s_manual, "manual");
    INTERN(s_child, "child");
    INTERN(s_success, "success");
    INTERN(s_close, "close");
    INTERN(s_throw, "throw");
    INTERN(s_block, "block");
    INTERN(s_kind, "kind");
    INTERN(s_inputs, "inputs");
    INTERN(s_trigger_kind, "trigger_kind");
    INTERN(s_sample_rate, "sample_rate");
    INTERN(s_own_rate, "_sample_rate");
    INTERN(s_token, "_token");
    INTERN(s_otel_trace, "opentelemetry.trace");
    INTERN(s_old_value, "old_value");
    INTERN(s_sampled, "sampled");
    token_missing = PyObject_GetAttrString((PyObject *)&PyContextToken_Type, "MISSING");
    kw_final = PyTuple_Pack(1, s_final);
    zero = PyLong_FromLong(0);
    null_value = PyFloat_FromDouble(Py_NAN);
    empty_str = PyUnicode_New(0, 0);
    one = PyLong_FromLong(1);
    two = PyLong_FromLong(2);
    three = PyLong_FromLong(3);
    if (three == NULL || kw_final == NULL || token_missing == NULL || zero == NULL || null_value == NULL
        || empty_str == NULL || one == NULL
        || two == NULL) {
        return NULL;
    }
    PyObject *module = PyModule_Create(&module_def);
    if (module == NULL) {
        return NULL;
    }
    /* Bumped whenever the Python side's expectations change: a stale build is not used. */
    if (PyModule_AddIntConstant(module, "ABI", 8) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    if (PyModule_AddObjectRef(module, "CallSpec", (PyObject *)&CallSpecType) < 0
        || PyModule_AddObjectRef(module, "TracedFunction", (PyObject *)&TracedFunctionType) < 0
        || PyModule_AddObjectRef(module, "TracedCoroutine", (PyObject *)&TracedCoroutineType) < 0
        || PyModule_AddObjectRef(module, "TracedCoroutineAwaiter", (PyObject *)&AwaiterType) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
