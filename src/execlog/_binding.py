"""Binding a call's arguments to parameter names, planned once per decorated function.

The inputs of a call are ``{parameter: value}`` in the order the parameters are declared
(API.md section 6): defaults included, ``*args`` a list and ``**kwargs`` a dict under their own
names, the instance (``self``/``cls``) left out, names the user excluded never touched. A
keyword the function does not declare (the call will raise ``TypeError``) is kept at the end.

:class:`Binder` is the reference; the C accelerator binds from the same plan
(:meth:`Binder.plan`) without building the dict when it can write the JSON directly.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Collection

__all__ = ["Binder"]

_EMPTY = inspect.Parameter.empty
#: Names taken to be the instance when they come first: left out of the inputs.
_INSTANCE_NAMES = ("self", "cls")


class Binder:
    """How one function's parameters take a call's arguments.

    ``instance`` (given to :meth:`bind`) is the object a method is bound to, already taken off
    the arguments: the first positional parameter is then skipped. A first parameter named
    ``self`` or ``cls`` is left out of the inputs in any case.
    """

    __slots__ = (
        "defaults",
        "drop_first",
        "excluded",
        "fast",
        "fast_bound",
        "keywords",
        "order",
        "positional",
        "posonly",
        "var_kw",
        "var_pos",
    )

    def __init__(
        self,
        func: Callable[..., Any],
        *,
        keep: Collection[str] | None = None,
        exclude: Collection[str] = (),
    ) -> None:
        """Plan the binding of ``func``'s calls.

        Args:
            func: The function.
            keep: Parameter names to capture (None: every one).
            exclude: Parameter names never captured.
        """
        try:
            params = list(inspect.signature(func).parameters.values())
        except (TypeError, ValueError):  # a callable without a signature: *args, **kwargs
            params = [
                inspect.Parameter("args", inspect.Parameter.VAR_POSITIONAL),
                inspect.Parameter("kwargs", inspect.Parameter.VAR_KEYWORD),
            ]
        kinds = inspect.Parameter
        self.positional = tuple(
            p.name for p in params if p.kind in (kinds.POSITIONAL_ONLY, kinds.POSITIONAL_OR_KEYWORD)
        )
        self.posonly = sum(p.kind is kinds.POSITIONAL_ONLY for p in params)
        self.var_pos = next((p.name for p in params if p.kind is kinds.VAR_POSITIONAL), None)
        self.var_kw = next((p.name for p in params if p.kind is kinds.VAR_KEYWORD), None)
        #: names a keyword argument may bind to (not positional-only, not *args/**kwargs)
        self.keywords = frozenset(
            p.name for p in params if p.kind in (kinds.POSITIONAL_OR_KEYWORD, kinds.KEYWORD_ONLY)
        )
        self.defaults = {p.name: p.default for p in params if p.default is not _EMPTY}
        self.order = tuple(p.name for p in params)
        self.drop_first = bool(self.positional) and self.positional[0] in _INSTANCE_NAMES
        excluded = set(exclude)
        if keep is not None:
            excluded |= set(self.order) - set(keep)
        self.excluded = frozenset(excluded)
        self.fast = _compile(self, bound=False)
        self.fast_bound = _compile(self, bound=True)

    def captured(self, name: str, *, bound: bool) -> bool:
        """Whether parameter ``name`` appears in the inputs of a call (bound or not)."""
        if name in self.excluded:
            return False
        first = self.positional[0] if self.positional else None
        return not (name == first and (bound or self.drop_first))

    def bind(self, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        """The inputs of one call, in declaration order."""
        bound = instance is not None
        if not kwargs:
            fast = self.fast_bound if bound else self.fast
            if fast is not None:
                inputs: dict[str, Any] | None = fast(args)
                if inputs is not None:
                    return inputs
        names = self.positional[1:] if bound else self.positional
        values = dict(zip(names, args))
        extra_kw: dict[str, Any] = {}
        undeclared: dict[str, Any] = {}
        keywords = self.keywords
        for key, value in kwargs.items():
            if key in keywords:
                values[key] = value
            elif self.var_kw is not None:
                extra_kw[key] = value
            else:
                undeclared[key] = value
        inputs = {}
        excluded = self.excluded
        for name in self.order:
            if name in excluded or not self.captured(name, bound=bound):
                continue
            if name == self.var_pos:
                inputs[name] = list(args[len(names) :])
            elif name == self.var_kw:
                inputs[name] = extra_kw
            elif name in values:
                inputs[name] = values[name]
            elif name in self.defaults:
                inputs[name] = self.defaults[name]
        for key, value in undeclared.items():
            if key not in excluded:
                inputs[key] = value
        return inputs

    def plan(self) -> tuple[Any, ...]:
        """The plan the C accelerator binds by (see ``CallSpec`` in ``_speedups.c``).

        ``(names, npos, posonly, defaults, var_pos, var_kw, captured, drop_first)``: every named
        parameter in declaration order with ``*args``/``**kwargs`` among them under their own
        names, how many are positional and positional-only, each one's default (or the
        ``inspect.Parameter.empty`` marker), the names of ``*args``/``**kwargs`` (or None), a
        flag per name (captured), and whether the first positional parameter is left out.
        """
        names = self.order
        defaults = tuple(self.defaults.get(name, _EMPTY) for name in names)
        captured = tuple(name not in self.excluded for name in names)
        return (
            names,
            len(self.positional),
            self.posonly,
            defaults,
            self.var_pos,
            self.var_kw,
            captured,
            self.drop_first,
        )


def _compile(binder: Binder, *, bound: bool) -> Callable[..., Any] | None:
    """Generate ``bind(args) -> dict | None`` for calls with positional arguments only.

    One dict display per possible argument count, defaults filled in from constants: about a
    fifth of the cost of building the dict step by step. None (the general path) for more
    than 16 parameters or names that are not identifiers; the generated function returns None
    for a count the function cannot take.
    """
    names = binder.positional[1:] if bound else binder.positional
    if len(binder.order) > 16 or not all(n.isidentifier() for n in binder.order):
        return None
    namespace: dict[str, Any] = {}
    constant: dict[str, str] = {}
    for index, (key, value) in enumerate(binder.defaults.items()):
        namespace[f"_default_{index}"] = value
        constant[key] = f"_default_{index}"
    lines = ["def bind(args):", "    count = len(args)"]
    npos = len(names)
    counts = [*range(npos, -1, -1)]
    for count in counts:
        items: list[str] | None = []
        for name in binder.order:
            if not binder.captured(name, bound=bound):
                continue
            assert items is not None
            if name == binder.var_pos:
                items.append(f"{name!r}: list(args[{npos}:])" if count == npos else f"{name!r}: []")
            elif name == binder.var_kw:
                items.append(f"{name!r}: {{}}")
            elif name in names[:count]:
                items.append(f"{name!r}: args[{names.index(name)}]")
            elif name in constant:
                items.append(f"{name!r}: {constant[name]}")
            elif name in names or name in binder.keywords:
                items = None  # a required parameter not given: the call raises TypeError
                break
        test = f"count >= {count}" if count == npos and binder.var_pos else f"count == {count}"
        lines.append(f"    if {test}:")
        lines.append(
            "        return None" if items is None else f"        return {{{', '.join(items)}}}"
        )
    lines.append("    return None")
    exec("\n".join(lines), namespace)  # noqa: S102 - generated from parameter names only
    bind: Callable[..., Any] = namespace["bind"]
    return bind
