"""Smoke run of index_cost.py (rows/s with and without schema version 5's indexes).

The numbers come from running the script itself (see README, How fast it answers); this only
checks that it runs, so that it keeps working. Nothing here asserts on timing.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

sys.path.insert(0, str(Path(__file__).resolve().parent))

import index_cost

if TYPE_CHECKING:
    import pytest


def test_index_cost_script_runs(capsys: pytest.CaptureFixture[str]) -> None:
    assert index_cost.main(["--rows", "3000", "--rounds", "2"]) == 0
    out = capsys.readouterr().out
    assert "without migration 5's indexes" in out
    assert "with migration 5's indexes" in out
