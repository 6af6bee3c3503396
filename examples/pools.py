"""Threads and process pools whose work nests under the execution that submitted it.

python examples/pools.py
execlog tree --last
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib

import execlog


@execlog.traced_execution(kind="cpu")
def checksum(block: int) -> str:
    """Hash one block (in a worker process)."""
    return hashlib.sha256(block.to_bytes(8, "little") * 10_000).hexdigest()[:12]


@execlog.traced_execution(kind="io")
def fetch(block: int) -> int:
    """Pretend to fetch one block (in a worker thread)."""
    return block * 3


@execlog.traced_execution(kind="workflow")
def nightly(blocks: list[int]) -> dict[str, str]:
    with cf.ThreadPoolExecutor(4) as threads:
        fetched = list(threads.map(fetch, blocks))
    with cf.ProcessPoolExecutor(2) as processes:
        sums = list(processes.map(checksum, fetched, chunksize=2))
    return dict(zip(map(str, fetched), sums, strict=True))


if __name__ == "__main__":
    execlog.instrument_threads()
    nightly(list(range(6)))
    execlog.flush()
    from execlog.cli import main as execlog_cli

    execlog_cli(["tree", "--last"])
