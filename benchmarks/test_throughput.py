"""Smoke run of throughput.py (1 and 4 recording processes, SQLite and PostgreSQL).

The numbers come from running the script itself (see benchmarks/README.md); this only checks
that it runs, so that it keeps working. Nothing here asserts on timing.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import throughput


def test_throughput_script_runs(capsys) -> None:
    assert throughput.main(["--per-process", "200", "--batch-rows", "1024"]) == 0
    out = capsys.readouterr().out
    assert "4 process(es)" in out
    assert "copy_then_insert_select" in out
