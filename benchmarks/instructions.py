"""Instructions per call of each call shape, counted by callgrind: a figure noise cannot move.

Usage::

    python benchmarks/instructions.py                  # every shape, bare / execlog / OTel
    python benchmarks/instructions.py --variants execlog --shapes positional keyword
    python benchmarks/instructions.py --keep /tmp/cg   # keep the profiles (callgrind_annotate)
    python benchmarks/instructions.py --capture        # f(x) with capture_cost.py's arguments
    python benchmarks/instructions.py --json out.json

Needs valgrind. One interpreter runs under ``valgrind --tool=callgrind`` with
``PYTHONHASHSEED=0`` and collection off; each measured region is a loop of N calls of one
shape, run from inside a ``ctypes`` call (``lfind`` with a Python callback), and callgrind is
told to count only inside ``ffi_call`` and to write a profile after each one. Every shape and
variant is run for N and for 3N calls; ``(I(3N) - I(N)) / 2N`` is its instructions per call
(what the region costs once, such as the ctypes call and the loop's setup, cancels out).

What is counted is the calling thread only: execlog's writer is kept asleep (``batch_size``
and ``flush_interval`` out of reach, so records stay queued) and OpenTelemetry's
``BatchSpanProcessor`` exports on its own thread, as in ``compare.py``. The shapes are those of
``call_shapes.py`` (the same functions and recorded inputs as ``compare.py``'s table).
``--capture`` counts ``f(x)`` of ``capture_cost.py`` instead, with each argument at about 100
bytes, at the size of issue #11's table and at 10 times that (N = 100 by default): a bounded
capture costs the same number of instructions at 1x and 10x.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

HERE = Path(__file__).resolve().parent

# -- the measured interpreter ---------------------------------------------------------------


def _regions() -> Callable[[Callable[[int], Any], int], None]:
    """``region(run, calls)``: ``run(calls)`` inside one ``ffi_call`` (one profile each)."""
    import ctypes

    libc = ctypes.CDLL(None)
    compare_fn = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)
    libc.lfind.restype = ctypes.c_void_p
    libc.lfind.argtypes = [
        ctypes.c_void_p,
        ctypes.c_void_p,
        ctypes.POINTER(ctypes.c_size_t),
        ctypes.c_size_t,
        compare_fn,
    ]
    key = ctypes.c_int(0)
    base = (ctypes.c_int * 1)(0)
    count = ctypes.c_size_t(1)

    def region(run: Callable[[int], Any], calls: int) -> None:
        def body(_a: Any, _b: Any) -> int:
            run(calls)
            return 0

        callback = compare_fn(body)
        libc.lfind(ctypes.byref(key), base, ctypes.byref(count), ctypes.sizeof(key), callback)

    return region


def _shape_jobs(
    shapes: list[str], variants: list[str]
) -> Iterator[tuple[str, Callable[[int], Any]]]:
    import asyncio

    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    from call_shapes import BY_KEY, bare_targets, execlog_targets, loop_of, otel_targets
    from compare import DiscardingExporter

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(DiscardingExporter()))
    loop = asyncio.new_event_loop()
    targets = {
        "bare": bare_targets(),
        "execlog": execlog_targets(),
        "otel": otel_targets(provider.get_tracer("execlog-instructions")),
    }
    for shape_key in shapes:
        shape = BY_KEY[shape_key]
        for variant in variants:
            yield f"{shape_key} {variant}", loop_of(shape, targets[variant].of(shape), loop)
            provider.force_flush()


def _capture_jobs(
    arguments: list[str], sizes: list[str]
) -> Iterator[tuple[str, Callable[[int], Any]]]:
    from capture_cost import BY_KEY, traced_len

    f = traced_len()
    for key in arguments:
        argument = BY_KEY[key]
        if not argument.available():
            continue
        for size in sizes:
            value = argument.build(size)

            def run(n: int, value: Any = value) -> None:
                call = f
                for _ in range(n):
                    call(value)

            yield f"{key} {size}", run
            del value, run


def child(args: argparse.Namespace) -> None:
    """Run N and 3N calls of each job, one ``ffi_call`` region each; write the labels."""
    import execlog

    workdir = tempfile.mkdtemp(prefix="execlog-instructions-")
    execlog.configure(
        db=str(Path(workdir) / "instructions.db"),
        batch_size=10**9,  # the writer never wakes for a batch...
        flush_interval=1e6,  # ...nor on its timer: nothing but the calls is counted
        queue_size=10**7,
    )
    region = _regions()
    labels = ["(first region, not used)"]
    region(lambda calls: None, 0)  # the first region pays for ctypes' own first call
    jobs = (
        _capture_jobs(args.arguments, args.sizes)
        if args.capture
        else _shape_jobs(args.shapes, args.variants)
    )
    n = args.child
    for label, run in jobs:
        run(min(200, n))  # warm: caches filled, the writer started, specialised bytecode
        for calls in (n, 3 * n):
            region(run, calls)
            labels.append(f"{label} {calls}")
    Path(args.labels).write_text(json.dumps(labels))
    sys.stdout.flush()
    os._exit(0)  # skip exit-time flushing of the queued records


# -- the parent: runs valgrind, reads the profiles ---------------------------------------------


def totals(path: Path) -> int:
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith(("totals:", "summary:")):
            return int(line.split()[1])
    raise ValueError(f"no totals in {path}")


def measure(args: argparse.Namespace, outdir: Path) -> dict[str, dict[str, float]]:
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise SystemExit("valgrind is not installed")
    labels_path = outdir / "labels.json"
    out = outdir / "callgrind.out"
    env = {
        **os.environ,
        "PYTHONHASHSEED": "0",
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
    }
    for name in ("EXECLOG_DISABLED", "EXECLOG_PARENT_ID", "EXECLOG_CORRELATION_ID"):
        env.pop(name, None)
    command = [
        valgrind,
        "--tool=callgrind",
        "--collect-atstart=no",
        "--toggle-collect=ffi_call",
        "--dump-after=ffi_call",
        f"--callgrind-out-file={out}",
        sys.executable,  # the interpreter itself (a virtualenv's, found by its path)
        str(Path(__file__).resolve()),
        "--child",
        str(args.calls),
        "--labels",
        str(labels_path),
        *(
            ["--capture", "--arguments", *args.arguments, "--sizes", *args.sizes]
            if args.capture
            else ["--shapes", *args.shapes, "--variants", *args.variants]
        ),
    ]
    proc = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0 or not labels_path.exists():
        raise SystemExit(f"valgrind run failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    labels = json.loads(labels_path.read_text())
    counts: dict[tuple[str, str], dict[int, int]] = {}
    for index, label in enumerate(labels[1:], start=2):
        row, column, calls = label.split(" ")
        counts.setdefault((row, column), {})[int(calls)] = totals(Path(f"{out}.{index}"))
    per_call: dict[str, dict[str, float]] = {}
    n = args.calls
    for (row, column), by_calls in counts.items():
        per_call.setdefault(row, {})[column] = (by_calls[3 * n] - by_calls[n]) / (2 * n)
    return per_call


def report_shapes(per_call: dict[str, dict[str, float]], args: argparse.Namespace) -> None:
    from call_shapes import BY_KEY

    variants = args.variants
    full = "execlog" in variants
    lighter = full and "otel" in variants
    print(f"instructions per call (callgrind, N={args.calls} vs 3N calls, PYTHONHASHSEED=0)")
    header = f"{'shape':<24} {'call':<22}" + "".join(f"{v:>10}" for v in variants)
    header += f"{'x pos':>8}{'-bare':>9}" if full else ""
    header += f"{'OTel/execlog':>13}" if lighter else ""
    print(header)
    print("-" * len(header))
    md_head = "| shape | call | " + " | ".join(variants)
    md_head += " | execlog / positional" if full else ""
    md_head += " | OTel / execlog" if lighter else ""
    md = [md_head + " |", "|---|---|" + "---:|" * (len(variants) + full + lighter)]
    for key, counts in per_call.items():
        shape = BY_KEY[key]
        cells = [f"{counts[v]:,.0f}" for v in variants]
        line = f"{shape.kind:<24} {shape.label:<22}" + "".join(f"{c:>10}" for c in cells)
        if full:
            base = per_call["async_positional" if shape.is_async else "positional"]["execlog"]
            ratio = counts["execlog"] / base
            own = counts["execlog"] - counts.get("bare", 0)
            line += f"{ratio:>7.2f}x{own:>9,.0f}"
            cells.append(f"{ratio:.2f}x")
        if lighter:
            otel_ratio = counts["otel"] / counts["execlog"]
            line += f"{otel_ratio:>12.1f}x"
            cells.append(f"{otel_ratio:.1f}x")
        print(line)
        md.append(f"| {shape.kind} | `{shape.label}` | " + " | ".join(cells) + " |")
    print()
    print("\n".join(md))


def report_capture(per_call: dict[str, dict[str, float]], args: argparse.Namespace) -> None:
    from capture_cost import BY_KEY

    print(
        f"instructions per traced f(x) call (callgrind, N={args.calls} vs 3N calls, "
        "PYTHONHASHSEED=0; the writer asleep)"
    )
    sizes = [s for s in ("100B", "1x", "10x") if s in args.sizes]
    header = f"{'argument (1x)':<38}" + "".join(f"{s:>12}" for s in sizes)
    header += f"{'10x/1x':>8}" if {"1x", "10x"} <= set(sizes) else ""
    print(header)
    print("-" * len(header))
    for key, counts in per_call.items():
        line = f"{BY_KEY[key].label_at('1x'):<38}" + "".join(f"{counts[s]:>12,.0f}" for s in sizes)
        if {"1x", "10x"} <= set(sizes):
            line += f"{counts['10x'] / counts['1x']:>8.3f}"
        print(line)


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(HERE))
    from call_shapes import SHAPES, VARIANTS
    from capture_cost import ARGUMENTS, SIZES

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=None, help="N (default 500, capture 100)")
    parser.add_argument(
        "--shapes", nargs="+", default=[s.key for s in SHAPES], choices=[s.key for s in SHAPES]
    )
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument(
        "--capture",
        action="store_true",
        help="instead of the shapes: f(x) with the arguments of capture_cost.py",
    )
    parser.add_argument(
        "--arguments",
        nargs="+",
        default=[a.key for a in ARGUMENTS],
        choices=[a.key for a in ARGUMENTS],
    )
    parser.add_argument("--sizes", nargs="+", default=list(SIZES), choices=SIZES)
    parser.add_argument("--keep", metavar="DIR", help="write the profiles here and keep them")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--labels", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        child(args)
        return 0
    args.calls = args.calls or (100 if args.capture else 500)
    for base, is_async in (("positional", False), ("async_positional", True)):
        # what the ratios are taken against
        if base not in args.shapes and any(
            s.is_async == is_async for s in SHAPES if s.key in args.shapes
        ):
            args.shapes.insert(0, base)
    if args.keep:
        outdir = Path(args.keep)
        outdir.mkdir(parents=True, exist_ok=True)
        per_call = measure(args, outdir)
    else:
        with tempfile.TemporaryDirectory(prefix="execlog-callgrind-") as tmp:
            per_call = measure(args, Path(tmp))
    (report_capture if args.capture else report_shapes)(per_call, args)
    if args.json:
        Path(args.json).write_text(json.dumps({"calls": args.calls, "per_call": per_call}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
