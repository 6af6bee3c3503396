"""What a traced call costs with a big argument: the capture cost is bounded by the payload limit.

Usage::

    python benchmarks/capture_cost.py            # 15 interleaved rounds per argument, ~40 s
    python benchmarks/capture_cost.py --quick    # 3 rounds, 1x and 100-byte arguments only
    python benchmarks/capture_cost.py --json out.json

The function is ``@traced_execution def f(x): return len(x)`` with execlog's default settings
(``max_payload_bytes=65_536``), recording into a temporary SQLite file. Each argument comes in
three sizes: about 100 bytes, the size of issue #11's table (``1x``) and ten times that
(``10x``). Every round times N calls (N calibrated to about ``--target-ms``) of each size in a
shuffled order, flushing execlog after each measurement (outside the timed region), so that
the three sizes of one argument are measured close together in time; one argument's values
are built, measured and dropped before the next argument's are built.

Reported per argument: µs per call at each size (median over rounds, with the range), the
extra cost of the 1x argument over the 100-byte one (median of the per-round differences) and
the ratio 10x / 1x (median of the per-round ratios, with their range). Targets (#11): the
extra at most 50 µs, the ratio at most 1.2.

``test_capture_cost.py`` runs the same calls under pytest-benchmark.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING, Any

import execlog
from compare import source_revision

if TYPE_CHECKING:
    from collections.abc import Callable

perf_ns = time.perf_counter_ns  # --clock thread: time.thread_time_ns
CLOCKS = {"wall": time.perf_counter_ns, "thread": time.thread_time_ns}

#: Targets of issue #11.
MAX_EXTRA_US = 50.0
MAX_RATIO_10X = 1.2

SIZES = ("100B", "1x", "10x")


# -- the arguments ----------------------------------------------------------------------------


def _floats(n: int) -> Any:
    import numpy as np

    return np.random.default_rng(0).random(n)


def _frame(rows: int) -> Any:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "id": np.arange(rows, dtype=np.int64),
            "x": rng.random(rows),
            "y": rng.random(rows),
        }
    )


def _str_keys(n: int) -> dict[str, int]:
    return {str(i): i for i in range(n)}


@dataclass(frozen=True)
class Argument:
    """One kind of argument: built at about 100 bytes, at the table's size and 10x that."""

    key: str
    label: str  # the 1x value, as the issue writes it
    make: Callable[[int], Any]
    size: int  # the 1x size handed to make()
    small: int  # the size giving about 100 bytes (of data; of JSON for lists and dicts)
    needs: str | None = None  # a module that must be importable

    def label_at(self, size: str) -> str:
        n = {"100B": self.small, "1x": self.size, "10x": self.size * 10}[size]
        return self.label.replace("N", f"{n:_}")

    def build(self, size: str) -> Any:
        """The value at ``size``, moved to the garbage collector's oldest generation.

        A value a program has held for a while sits there; a container just built does not,
        and the young-generation collections that any allocation triggers (execlog's among
        them) would walk all of its items until it is promoted: a cost of the benchmark, not
        of capturing.
        """
        n = {"100B": self.small, "1x": self.size, "10x": self.size * 10}[size]
        value = self.make(n)
        gc.collect()
        return value

    def available(self) -> bool:
        return self.needs is None or all(find_spec(m) is not None for m in self.needs.split(","))


ARGUMENTS: tuple[Argument, ...] = (
    Argument("bytearray", "bytearray(N)", bytearray, 10_000_000, 100),
    Argument("bytes", "bytes(N)", bytes, 10_000_000, 100),
    Argument("list", "list(range(N))", lambda n: list(range(n)), 1_000_000, 36),
    Argument("dict", "{str(i): i for i in range(N)}", _str_keys, 100_000, 14),
    Argument("str", '"x" * N', lambda n: "x" * n, 10_000_000, 100),
    Argument("ndarray", "numpy array of N floats", _floats, 10_000_000, 12, "numpy"),
    Argument("DataFrame", "DataFrame of N rows x 3", _frame, 1_000_000, 4, "numpy,pandas"),
)
BY_KEY = {a.key: a for a in ARGUMENTS}


def traced_len() -> Callable[[Any], int]:
    """``@traced_execution def f(x): return len(x)``, default settings."""

    @execlog.traced_execution
    def f(x):
        return len(x)

    return f


# -- measuring --------------------------------------------------------------------------------


@dataclass
class Series:
    size: str
    value: Any
    n: int = 0
    samples: list[float] = field(default_factory=list)  # µs per call, one per round


def _time(fn: Callable[[Any], int], value: Any, n: int) -> int:
    call = fn
    rng = range(n)
    t0 = perf_ns()
    for _ in rng:
        call(value)
    elapsed = perf_ns() - t0
    if not execlog.flush(timeout=120.0):
        print("warning: execlog.flush() returned False", file=sys.stderr)
    return elapsed


def _calibrate(fn: Callable[[Any], int], value: Any, target_ns: int) -> int:
    n = 1
    while True:
        elapsed = _time(fn, value, n)
        if elapsed >= target_ns / 10 or n >= 1_000_000:
            return max(1, min(int(n * target_ns / max(elapsed, 1)), 2_000_000))
        n *= 10


def measure(
    fn: Callable[[Any], int],
    db: str,
    argument: Argument,
    sizes: tuple[str, ...],
    rounds: int,
    target_ms: float,
    rng: random.Random,
) -> dict[str, Any]:
    """Time ``fn`` on ``argument`` at each of ``sizes``, interleaved over ``rounds``."""
    t_build = perf_ns()
    series = [Series(size, argument.build(size)) for size in sizes]
    build_s = (perf_ns() - t_build) / 1e9
    target_ns = int(target_ms * 1e6)
    for s in series:
        _time(fn, s.value, 20)  # warm up
        s.n = _calibrate(fn, s.value, target_ns)
    for _ in range(rounds):
        order = series[:]
        rng.shuffle(order)
        for s in order:
            s.samples.append(_time(fn, s.value, s.n) / s.n / 1e3)
    by = {s.size: s for s in series}
    out: dict[str, Any] = {
        "key": argument.key,
        "label": argument.label_at("1x"),
        "build_s": build_s,
        "sizes": {
            s.size: {
                "label": argument.label_at(s.size),
                "n": s.n,
                "us_median": statistics.median(s.samples),
                "us_min": min(s.samples),
                "us_max": max(s.samples),
                "samples_us": s.samples,
                "stored_bytes": _stored_size(fn, s.value, db),
            }
            for s in series
        },
    }
    small, one, ten = by.get("100B"), by.get("1x"), by.get("10x")
    if small and one:
        extra = [b - a for a, b in zip(small.samples, one.samples)]
        out["extra_us"] = {
            "median": statistics.median(extra),
            "min": min(extra),
            "max": max(extra),
        }
    if one and ten:
        ratio = [b / a for a, b in zip(one.samples, ten.samples)]
        out["ratio_10x"] = {
            "median": statistics.median(ratio),
            "min": min(ratio),
            "max": max(ratio),
        }
    del series, by, small, one, ten
    gc.collect()
    return out


def _stored_size(fn: Callable[[Any], int], value: Any, db: str) -> int | None:
    """The length of the inputs JSON execlog stored for one call of ``fn(value)``."""
    with execlog.execution("capture-size-probe") as probe:
        fn(value)
    execlog.flush(timeout=60.0)
    conn = sqlite3.connect(db)
    try:
        row = conn.execute(
            "SELECT length(CAST(inputs AS BLOB)) FROM executions WHERE parent_execution_id = ?",
            (probe.execution_id,),
        ).fetchone()
    finally:
        conn.close()
    return None if row is None else int(row[0])


# -- report -----------------------------------------------------------------------------------


def _range(entry: dict[str, float], fmt: str = "{:.1f}") -> str:
    return f"{fmt.format(entry['min'])}-{fmt.format(entry['max'])}"


def markdown(results: list[dict[str, Any]]) -> str:
    """The table, as the README shows it."""
    lines = [
        "| argument (1x) | 100 bytes | 1x | 10x | 1x - 100 bytes | 10x / 1x |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        cells = []
        for size in SIZES:
            entry = r["sizes"].get(size)
            cells.append("" if entry is None else f"{entry['us_median']:.1f} µs")
        extra = r.get("extra_us")
        ratio = r.get("ratio_10x")
        cells.append("" if extra is None else f"{extra['median']:+.1f} µs")
        cells.append("" if ratio is None else f"{ratio['median']:.2f}x")
        lines.append(f"| `{r['label']}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def report(results: list[dict[str, Any]], info: dict[str, Any]) -> None:
    print()
    print(
        f"execlog source: {info['execlog_revision'] or 'not a git checkout'}; "
        f"load average (1 min) at start {info['load_start']:.2f}, at end {info['load_end']:.2f}; "
        f"rounds={info['rounds']}, target={info['target_ms']} ms per measurement, "
        f"clock={info['clock']}"
    )
    print()
    header = (
        f"{'argument':<34} {'size':>5} {'µs/call':>8} {'range':>13} {'stored B':>9} "
        f"{'+µs vs 100B':>12} {'10x/1x':>7} {'ratio range':>12}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        for size in SIZES:
            entry = r["sizes"].get(size)
            if entry is None:
                continue
            extra = r.get("extra_us") if size == "1x" else None
            ratio = r.get("ratio_10x") if size == "10x" else None
            flag = ""
            if extra is not None and extra["median"] > MAX_EXTRA_US:
                flag = "  over +50 µs"
            if ratio is not None and ratio["median"] > MAX_RATIO_10X:
                flag = "  over 1.2x"
            stored = entry["stored_bytes"]
            extra_text = "" if extra is None else f"{extra['median']:+.1f} ({_range(extra)})"
            print(
                f"{entry['label']:<34} {size:>5} {entry['us_median']:>8.1f} "
                f"{entry['us_min']:>6.1f}-{entry['us_max']:<6.1f} "
                f"{'' if stored is None else stored:>9} "
                f"{extra_text:>12} "
                f"{'' if ratio is None else format(ratio['median'], '.2f'):>7} "
                f"{'' if ratio is None else _range(ratio, '{:.2f}'):>12}{flag}"
            )
    print()
    print(markdown(results))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 rounds, no 10x arguments")
    parser.add_argument("--rounds", type=int, default=None, help="rounds (default 15)")
    parser.add_argument(
        "--target-ms", type=float, default=None, help="one measurement, ms (default 20)"
    )
    parser.add_argument(
        "--only", action="append", choices=[a.key for a in ARGUMENTS], help="these arguments"
    )
    parser.add_argument(
        "--clock",
        choices=sorted(CLOCKS),
        default="wall",
        help="wall time (default) or the calling thread's CPU time (less moved by other work)",
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of the per-round order")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = parser.parse_args(argv)
    rounds = args.rounds or (3 if args.quick else 15)
    target_ms = args.target_ms or (5.0 if args.quick else 20.0)
    sizes = ("100B", "1x") if args.quick else SIZES

    for name in ("EXECLOG_DISABLED", "EXECLOG_PARENT_ID", "EXECLOG_CORRELATION_ID"):
        os.environ.pop(name, None)
    global perf_ns  # noqa: PLW0603 - read by _time at each measurement
    perf_ns = CLOCKS[args.clock]
    load_start = os.getloadavg()[0]
    rng = random.Random(args.seed)
    results = []
    with tempfile.TemporaryDirectory(prefix="execlog-capture-") as tmp:
        db = str(Path(tmp) / "capture.db")
        execlog.configure(db=db)  # otherwise default settings
        fn = traced_len()
        fn(b"warm up")  # schema created and writer running before the clock starts
        execlog.flush(timeout=30.0)
        try:
            for argument in ARGUMENTS:
                if args.only and argument.key not in args.only:
                    continue
                if not argument.available():
                    print(f"{argument.key}: skipped ({argument.needs} missing)", file=sys.stderr)
                    continue
                print(f"{argument.key}: {rounds} rounds...", file=sys.stderr)
                results.append(measure(fn, db, argument, sizes, rounds, target_ms, rng))
        finally:
            execlog.shutdown()
    info = {
        "load_start": load_start,
        "load_end": os.getloadavg()[0],
        "rounds": rounds,
        "target_ms": target_ms,
        "clock": args.clock,
        "python": sys.version.split()[0],
        "execlog_revision": source_revision(),
    }
    report(results, info)
    if args.json:
        Path(args.json).write_text(json.dumps({"info": info, "results": results}, indent=2))
        print(f"\nresults written to {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
