"""The ``execlog`` command line.

Commands run through ``execlog.cli.main([...])`` (output captured), and a few through real
processes (``python -m execlog`` and the ``execlog`` console script). ``--json`` output is parsed
and checked against what was recorded.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import io
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import execlog
from conftest import FIELDS, rows
from execlog._cli import commands, render
from execlog.cli import main

UTC = dt.timezone.utc
ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
PYTHON = sys.executable
CONSOLE_SCRIPT = str(Path(sys.executable).with_name("execlog"))
COMMANDS = ["list", "show", "tree", "lineage", "chain", "stats", "prune", "export", "serve", "run"]


ANSI = re.compile(r"\x1b\[[0-9;]*m")
STATUS = re.compile(r"^(.*?)\s+(?:success|error|partial|cancelled|running|abandoned)\s")


def label(line: str) -> str:
    """The label (indentation and name) of one line of a tree."""
    match = STATUS.match(line)
    assert match is not None, line
    return match[1]


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run ``execlog ARGV`` in this process: (exit status, stdout, stderr)."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def cli_json(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    """Run ``execlog ARGV --json``, check it succeeded, and parse its output."""
    code, out, err = cli(capsys, *argv, "--json")
    assert (0, "") == (code, err)
    return json.loads(out)


def ids(items: list[dict[str, Any]]) -> list[str]:
    """The execution ids of JSON executions."""
    return [item["execution_id"] for item in items]


def us(value: dt.datetime) -> int:
    """Microseconds since the epoch."""
    return (value - dt.datetime(1970, 1, 1, tzinfo=UTC)) // dt.timedelta(microseconds=1)


def row(execution_id: str, started: dt.datetime, **values: Any) -> dict[str, Any]:
    """One synthetic execution (a root of its own correlation unless told)."""
    return {
        "execution_id": execution_id,
        "name": "synthetic",
        "kind": "function",
        "status": "success",
        "started_at": us(started),
        "ended_at": us(started) + 1000,
        "duration_ms": 1.0,
        "correlation_id": execution_id,
        "trigger_kind": "manual",
        "pid": 1,
        "thread_id": 1,
        "host": "h",
        **values,
    }


def insert(db: str, *rows_or_id: Any, **values: Any) -> None:
    """Insert synthetic executions: ``insert(db, row, row...)`` or ``insert(db, id, started)``."""
    with execlog.open_store(db, create=True):  # created and migrated
        pass
    if isinstance(rows_or_id[0], str):
        rows_or_id = (row(*rows_or_id, **values),)
    conn = sqlite3.connect(db)
    try:
        with conn:
            for item in rows_or_id:
                conn.execute(
                    f"INSERT INTO executions ({', '.join(item)}) "
                    f"VALUES ({', '.join('?' * len(item))})",
                    tuple(item.values()),
                )
    finally:
        conn.close()


@dataclass
class History:
    """A recorded workflow: ids of each execution, by role."""

    db: str
    root: str
    load: str
    transform: str
    step: str
    failed: str
    retry: str
    other: str


@pytest.fixture
def history(db: str) -> History:
    """``nightly`` (load, transform > step, a failed publish and its retry), then ``other``."""
    with execlog.execution("nightly", kind="workflow", inputs={"day": "2026-11-21"}) as root:
        with execlog.execution("load", inputs={"path": "a.csv", "limit": 10}) as load:
            load.set_output({"rows": [1, 2, 3]})
            load.tag(source="s3")
        with execlog.execution("transform") as transform, execlog.execution("step") as step:
            time.sleep(0.002)
        with (
            contextlib.suppress(RuntimeError),
            execlog.execution("publish", inputs={"attempt": 1}) as failed,
        ):
            msg = "503 from the report service"
            raise RuntimeError(msg)
        with execlog.execution("publish", parent=failed, trigger_kind="retry") as retry:
            pass
    with execlog.execution("other") as other:
        other.set_status("partial")
    assert execlog.flush(timeout=10)
    return History(
        db,
        root.execution_id,
        load.execution_id,
        transform.execution_id,
        step.execution_id,
        failed.execution_id,
        retry.execution_id,
        other.execution_id,
    )


class TestList:
    """``execlog list``."""

    def test_json_is_every_execution_newest_first(
        self, history: History, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """--json gives every field of every execution, in the store's order (newest first)."""
        found = cli_json(capsys, "list", "--db", history.db)
        with execlog.open_store(history.db) as store:
            expected = [e.to_dict() for e in store.list(limit=20)]
        assert expected == found
        assert FIELDS == list(found[0])
        assert history.other == found[0]["execution_id"]
        assert 7 == len(found)

    def test_filters(self, history: History, capsys: pytest.CaptureFixture[str]) -> None:
        """--name and --status are exact and combine."""
        assert [history.retry, history.failed] == ids(
            cli_json(capsys, "list", "--db", history.db, "--name", "publish")
        )
        assert [history.failed] == ids(
            cli_json(capsys, "list", "--db", history.db, "--name", "publish", "--status", "error")
        )
        assert [history.other] == ids(
            cli_json(capsys, "list", "--db", history.db, "--status", "partial")
        )
        assert [] == cli_json(capsys, "list", "--db", history.db, "--name", "nope")

    def test_limit_and_offset(self, history: History, capsys: pytest.CaptureFixture[str]) -> None:
        """--limit and --offset page through the newest-first list."""
        everything = ids(cli_json(capsys, "list", "--db", history.db))
        assert everything[:2] == ids(cli_json(capsys, "list", "--db", history.db, "--limit", "2"))
        assert everything[2:5] == ids(
            cli_json(capsys, "list", "--db", history.db, "--limit", "3", "--offset", "2")
        )

    def test_since_and_until(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """--since/--until take ages, dates and ISO datetimes; since inclusive, until exclusive."""
        db = str(tmp_path / "times.db")
        now = dt.datetime.now(UTC)
        insert(db, "old", dt.datetime(2026, 1, 1, tzinfo=UTC))
        insert(db, "midnight", dt.datetime(2026, 3, 1, tzinfo=UTC))
        insert(db, "days-ago", now - dt.timedelta(days=3))
        insert(db, "hours-ago", now - dt.timedelta(hours=2))
        insert(db, "recent", now - dt.timedelta(minutes=5))

        def listed(*options: str) -> list[str]:
            return ids(cli_json(capsys, "list", "--db", db, *options))

        assert ["recent"] == listed("--since", "30m")
        assert ["recent", "hours-ago"] == listed("--since", "3h")
        assert ["recent", "hours-ago", "days-ago"] == listed("--since", "7d")
        assert ["days-ago"] == listed("--since", "4d", "--until", "1d")
        assert ["midnight"] == listed("--since", "2026-03-01", "--until", "2026-03-02")
        assert ["old"] == listed("--until", "2026-03-01T00:00:00Z")
        assert ["old"] == listed("--until", "2026-03-01 01:00:00+01:00")
        assert ["midnight", "old"] == listed("--until", "2026-03-01T00:00:00.000001")

    def test_table(self, history: History, capsys: pytest.CaptureFixture[str]) -> None:
        """Without --json: a header and one row per execution, no colour when not a terminal."""
        code, out, err = cli(capsys, "list", "--db", history.db)
        lines = out.splitlines()
        assert (0, "") == (code, err)
        assert ["ID", "NAME", "STATUS", "STARTED", "(UTC)", "DURATION"] == lines[0].split()
        assert 8 == len(lines)
        assert [history.other, "other", "partial"] == lines[1].split()[:3]
        assert "\x1b[" not in out

    def test_nothing_found(self, history: History, capsys: pytest.CaptureFixture[str]) -> None:
        """An empty result prints a note on stderr and nothing on stdout."""
        assert (0, "", "no matching executions\n") == cli(
            capsys, "list", "--db", history.db, "--name", "nope"
        )


class TestTerminal:
    """Colour only on a terminal (and never with NO_COLOR); tables fit the terminal."""

    @pytest.fixture
    def tty(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Make (captured) stdout count as a 70-column terminal."""
        monkeypatch.setattr(commands, "_isatty", lambda stream: stream is sys.stdout)
        monkeypatch.setenv("COLUMNS", "70")
        monkeypatch.delenv("NO_COLOR", raising=False)

    def test_colour_and_width_on_a_terminal(
        self, history: History, tty: None, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """On a terminal the status is coloured and every line fits the width."""
        code = main(["list", "--db", history.db])
        out = capsys.readouterr().out
        assert 0 == code
        assert "\x1b[31merror" in out
        assert "\x1b[33mpartial" in out
        for line in ANSI.sub("", out).splitlines():
            assert len(line) <= 70, line
        code = main(["tree", "--db", history.db, history.step])
        out = capsys.readouterr().out
        assert 0 == code
        for line in ANSI.sub("", out).splitlines():
            assert len(line) <= 70, line

    def test_no_color(
        self,
        history: History,
        tty: None,
        capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """NO_COLOR turns colour off, even on a terminal."""
        monkeypatch.setenv("NO_COLOR", "1")
        assert 0 == main(["tree", "--db", history.db, history.step])
        assert "\x1b[" not in capsys.readouterr().out

    def test_table_cuts_the_flexible_column_first(self) -> None:
        """A table wider than the terminal shortens the named column, with an ellipsis."""
        text = render.table(
            ["ID", "NAME"], [["0123456789", "a-very-long-name-indeed"]], width=25, flex=[1]
        )
        assert ["ID          NAME", "0123456789  a-very-long-…"] == text.splitlines()
        wide = render.table(["ID", "NAME"], [["0123456789", "a-very-long-name-indeed"]])
        assert "0123456789  a-very-long-name-indeed" == wide.splitlines()[1]

    def test_durations(self) -> None:
        """Durations read like a person would write them."""
        assert ["-", "850µs", "12.3ms", "4.20s", "3m05s", "2h07m"] == [
            render.duration_text(ms) for ms in (None, 0.85, 12.34, 4200, 185_000, 7_620_000)
        ]


class TestIdsOnATerminal:
    """Ids that work on an 80-column terminal: short unique ids shown, prefixes accepted."""

    @pytest.fixture
    def tty80(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Make (captured) stdout count as an 80-column terminal."""
        monkeypatch.setattr(commands, "_isatty", lambda stream: stream is sys.stdout)
        monkeypatch.setenv("COLUMNS", "80")
        monkeypatch.setenv("NO_COLOR", "1")

    def test_what_list_shows_is_what_show_takes(
        self, history: History, tty80: None, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Every id in the list is whole or a unique prefix, never cut with an ellipsis, and
        ``show``, ``tree`` and ``lineage`` accept it."""
        code, out, _ = cli(capsys, "list", "--db", history.db)
        assert 0 == code
        shown = [line.split()[0] for line in out.splitlines()[1:]]
        assert 7 == len(shown)
        assert 1 == len({len(s) for s in shown})  # one column width
        for line in out.splitlines():
            assert len(line) <= 80, line
        with execlog.open_store(history.db) as store:
            expected = [e.execution_id for e in store.list()]
        for short, full in zip(shown, expected):
            assert "…" not in short
            assert full.startswith(short)
            assert 8 <= len(short)
            for command in ("show", "lineage", "tree"):
                assert 0 == cli(capsys, command, short, "--db", history.db)[0], command
            assert full == cli_json(capsys, "show", short, "--db", history.db)["execution_id"]

    def test_prefix_everywhere_an_id_is_taken(
        self, history: History, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """show, tree, lineage and chain take any unique prefix of 8 characters or more."""
        with execlog.open_store(history.db) as store:
            prefix = store.short_ids([history.transform])[history.transform]
        found = cli_json(capsys, "show", prefix, "--db", history.db)
        assert history.transform == found["execution_id"]
        tree = cli_json(capsys, "tree", prefix, "--below", "--db", history.db)
        assert [history.transform] == ids(tree)
        lineage = cli_json(capsys, "lineage", prefix, "--db", history.db)
        assert history.transform == lineage["execution"]["execution_id"]
        with execlog.open_store(history.db) as store:
            root_prefix = store.short_ids([history.root])[history.root]
        chain = cli_json(capsys, "chain", root_prefix, "--db", history.db)
        assert history.root == chain[0]["execution_id"]

    def test_ambiguous_prefix_lists_the_candidates(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A prefix several ids start with is an error (status 1) listing them."""
        db = str(tmp_path / "twins.db")
        start = dt.datetime(2026, 11, 21, tzinfo=UTC)
        first, second = (f"01a23d10-9a62-73b9-99cc-1eb00000000{i}" for i in (1, 2))
        insert(db, row(first, start, name="nightly"), row(second, start, name="other"))
        prefix = "01a23d10-9a62"
        for command in ("show", "tree", "lineage"):
            code, out, err = cli(capsys, command, prefix, "--db", db)
            assert (1, "") == (code, out), command
            assert [
                f"execlog: error: id prefix {prefix} is ambiguous; it matches:",
                f"  {first}  nightly  2026-11-21 00:00:00",
                f"  {second}  other  2026-11-21 00:00:00",
            ] == err.splitlines()
        code, _, err = cli(capsys, "chain", prefix, "--db", db)
        assert 1 == code
        assert err.startswith(f"execlog: error: correlation id prefix {prefix} is ambiguous")
        assert first in err

    def test_short_or_unknown_prefix(
        self, history: History, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Fewer than 8 characters never match; the error says so."""
        code, out, err = cli(capsys, "show", history.root[:7], "--db", history.db)
        assert (1, "") == (code, out)
        assert err == (
            f"execlog: error: no execution with id {history.root[:7]} "
            "(a prefix needs at least 8 characters)\n"
        )
        code, _, err = cli(capsys, "show", "ffffffff-ffff", "--db", history.db)
        assert (1, "execlog: error: no execution with id ffffffff-ffff\n") == (code, err)

    def test_piped_output_keeps_whole_ids(
        self, history: History, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Not on a terminal (a script reading the table): whole ids."""
        _, out, _ = cli(capsys, "list", "--db", history.db)
        assert 36 == len(out.splitlines()[1].split()[0])
        _, out, _ = cli(capsys, "chain", history.root, "--db", history.db)
        assert history.root == out.splitlines()[2].split()[1]

    def test_long_listings_keep_whole_ids(
        self,
        history: History,
        tty80: None,
        capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """Beyond SHORT_IDS_UP_TO rows, ids are not shortened (two look-ups per id)."""
        monkeypatch.setattr(commands, "SHORT_IDS_UP_TO", 3)
        _, out, _ = cli(capsys, "list", "--limit", "3", "--db", history.db)
        assert 36 > len(out.splitlines()[1].split()[0])
        _, out, _ = cli(capsys, "list", "--limit", "4", "--db", history.db)
        assert 36 == len(out.splitlines()[1].split()[0])

    def test_list_says_when_more_rows_exist(
        self, history: History, tty80: None, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Beyond --limit: one dim line on a terminal with the next --offset; exact fit or
        --json: nothing."""
        _, out, _ = cli(capsys, "list", "--limit", "3", "--db", history.db)
        lines = out.splitlines()
        assert 5 == len(lines)
        assert "more executions match: --offset 3 for the next 3" == lines[-1]
        _, out, _ = cli(capsys, "list", "--limit", "3", "--offset", "4", "--db", history.db)
        assert 4 == len(out.splitlines())  # the last three: nothing more
        assert "more" not in out
        found = cli_json(capsys, "list", "--limit", "3", "--db", history.db)
        assert 3 == len(found)

    def test_more_rows_line_is_dim(
        self, history: History, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """With colour on, the line is dimmed (secondary text)."""
        monkeypatch.setattr(commands, "_isatty", lambda stream: stream is sys.stdout)
        monkeypatch.delenv("NO_COLOR", raising=False)
        _, out, _ = cli(capsys, "list", "--limit", "1", "--db", history.db)
        assert out.splitlines()[-1].startswith("\x1b[2mmore executions match")

    def test_no_more_rows_line_when_piped(
        self, history: History, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Piped output is only the table."""
        _, out, _ = cli(capsys, "list", "--limit", "3", "--db", history.db)
        assert 4 == len(out.splitlines())

    def test_id_column_is_never_cut(self) -> None:
        """A ``keep`` column stays whole; the others are shortened instead."""
        text = render.table(
            ["ID", "NAME", "WHEN"],
            [["01a23d10-9a62-73b9-99cc-1eb000000001", "a-long-name-indeed", "2026-11-21"]],
            width=50,
            flex=[1],
            keep=[0],
        )
        row = text.splitlines()[1]
        assert row.startswith("01a23d10-9a62-73b9-99cc-1eb000000001  ")
        assert "…" in row


class TestShow:
    """``execlog show ID``."""

    def test_json(self, history: History, capsys: pytest.CaptureFixture[str]) -> None:
        """--json is the execution's every field, as recorded."""
        found = cli_json(capsys, "show", history.load, "--db", history.db)
        with execlog.open_store(history.db) as store:
            expected = store.get(history.load)
        assert expected is not None
        assert expected.to_dict() == found
        assert {"path": "a.csv", "limit": 10} == found["inputs"]
        assert {"rows": [1, 2, 3]} == found["output"]
        assert {"source": "s3"} == found["tags"]

    def test_text_has_every_field_and_the_traceback(
        self, history: History, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Every field is shown, inputs pretty-printed, and the error's traceback."""
        code, out, err = cli(capsys, "show", history.failed, "--db", history.db)
        assert (0, "") == (code, err)
        for name in FIELDS:
            assert name in out
        assert '  {\n    "attempt": 1\n  }' in out
        assert "RuntimeError: 503 from the report service" in out
        assert "Traceback (most recent call last):" in out
        assert "raise RuntimeError(msg)" in out


class TestTree:
    """``execlog tree``."""

    def test_whole_correlation_with_the_id_marked(
        self, history: History, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Any id of the tree shows the whole tree, children indented, that id marked."""
        code, out, err = cli(capsys, "tree", history.step, "--db", history.db)
        assert (0, "") == (code, err)
        lines = out.splitlines()
        labels = [label(line) for line in lines]
        assert [
            "nightly",
            "├─ load",
            "├─ transform",
            "│  └─ step",
            "└─ publish",
            "   └─ publish (retry)",
        ] == labels
        assert ["step"] == [line.split()[2] for line in lines if line.endswith("◀")]
        assert "error" in lines[4]
        assert "█" in lines[0]

    def test_below(self, history: History, capsys: pytest.CaptureFixture[str]) -> None:
        """--below shows only the execution and what it called."""
        code, out, _ = cli(capsys, "tree", history.transform, "--below", "--db", history.db)
        assert 0 == code
        assert ["transform", "└─ step"] == [label(line) for line in out.splitlines()]

    def test_last(self, history: History, capsys: pytest.CaptureFixture[str]) -> None:
        """--last is the newest root that has children: a lone root recorded later (here
        "other") does not hide the run."""
        code, out, _ = cli(capsys, "tree", "--last", "--db", history.db)
        assert 0 == code
        assert "nightly" == out.splitlines()[0].split()[0]
        assert 6 == len(out.splitlines())

    def test_last_with_name(self, history: History, capsys: pytest.CaptureFixture[str]) -> None:
        """--name NAME (with or without --last) is the newest root of that name, even alone."""
        for argv in (["--last", "--name", "other"], ["--name", "other"]):
            code, out, _ = cli(capsys, "tree", *argv, "--db", history.db)
            assert 0 == code
            assert ["other"] == [line.split()[0] for line in out.splitlines()]
        found = cli_json(capsys, "tree", "--name", "nightly", "--db", history.db)
        assert [history.root] == ids(found)

    def test_last_with_unknown_name(
        self, history: History, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A name no root has is an error that names it."""
        code, out, err = cli(capsys, "tree", "--name", "nope", "--db", history.db)
        assert (1, "", "execlog: error: no execution named 'nope'\n") == (code, out, err)

    def test_last_when_no_root_has_children(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Only lone roots: the newest of them."""
        db = str(tmp_path / "lone.db")
        start = dt.datetime(2026, 11, 21, tzinfo=UTC)
        insert(db, row("a", start), row("b", start + dt.timedelta(seconds=1)))
        assert [["b", []]] == [
            [n["execution_id"], n["children"]]
            for n in cli_json(capsys, "tree", "--last", "--db", db)
        ]

    def test_json_is_nested(self, history: History, capsys: pytest.CaptureFixture[str]) -> None:
        """--json is the list of roots, each execution with its children (by start time)."""
        found = cli_json(capsys, "tree", history.load, "--db", history.db)

        def shape(node: dict[str, Any]) -> Any:
            return [node["execution_id"], [shape(child) for child in node["children"]]]

        assert [
            [
                history.root,
                [
                    [history.load, []],
                    [history.transform, [[history.step, []]]],
                    [history.failed, [[history.retry, []]]],
                ],
            ]
        ] == [shape(node) for node in found]
        assert {"day": "2026-11-21"} == found[0]["inputs"]
        below = cli_json(capsys, "tree", history.transform, "--below", "--db", history.db)
        assert [[history.transform, [[history.step, []]]]] == [shape(n) for n in below]

    def test_needs_an_id_or_last(
        self, history: History, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Neither or both of ID and --last is an error."""
        assert (1, "", "execlog: error: give either an execution id or --last\n") == cli(
            capsys, "tree", "--db", history.db
        )
        assert 1 == cli(capsys, "tree", history.root, "--last", "--db", history.db)[0]

    def test_deep_tree_and_cycles(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """Deeper than the recursion limit, and hand-edited cycles, still render."""
        db = str(tmp_path / "deep.db")
        start = dt.datetime(2026, 1, 1, tzinfo=UTC)
        insert(
            db,
            *[
                row(
                    f"n{i:04d}",
                    start + dt.timedelta(microseconds=i),
                    correlation_id="deep",
                    parent_execution_id=f"n{i - 1:04d}" if i else None,
                )
                for i in range(1500)
            ],
        )
        with execlog.open_store(db) as store:
            chain = store.correlation_chain("deep")
        assert 1500 == len(render.tree(chain, render.Style(colour=False)).splitlines())
        # Deeper than orjson nests (254); not so deep that Python's json cannot read it back.
        nested = cli_json(capsys, "tree", "n1200", "--below", "--db", db)
        for i in range(1200, 1500):
            assert f"n{i:04d}" == nested[0]["execution_id"]
            nested = nested[0]["children"]
        assert [] == nested
        looped = [dataclasses.replace(chain[0], parent_execution_id="n0001"), chain[1]]
        drawn = [label(line) for line in render.tree(looped, render.Style(False)).splitlines()]
        assert ["synthetic", "└─ synthetic", "   └─ synthetic"] == drawn  # the loop, shown once
        as_json = commands._nested(looped, below=None)
        assert ["n0000"] == [node["execution_id"] for node in as_json]
        assert ["n0001"] == [node["execution_id"] for node in as_json[0]["children"]]
        assert [] == as_json[0]["children"][0]["children"]


class TestLineage:
    """``execlog lineage ID``."""

    def test_json(self, history: History, capsys: pytest.CaptureFixture[str]) -> None:
        """--json is the execution with its ancestors, descendants and siblings."""
        found = cli_json(capsys, "lineage", history.transform, "--db", history.db)
        assert ["execution", "ancestors", "descendants", "siblings"] == list(found)
        assert history.transform == found["execution"]["execution_id"]
        assert [history.root] == ids(found["ancestors"])
        assert [history.step] == ids(found["descendants"])
        assert {history.load, history.failed} == set(ids(found["siblings"]))

    def test_depth(self, history: History, capsys: pytest.CaptureFixture[str]) -> None:
        """--depth bounds the levels walked."""
        found = cli_json(capsys, "lineage", history.root, "--depth", "1", "--db", history.db)
        assert {history.load, history.transform, history.failed} == set(ids(found["descendants"]))

    def test_text(self, history: History, capsys: pytest.CaptureFixture[str]) -> None:
        """The lineage is drawn as a tree with the execution marked."""
        code, out, err = cli(capsys, "lineage", history.transform, "--db", history.db)
        assert (0, "") == (code, err)
        lines = out.splitlines()
        assert "1 ancestor, 2 siblings, 1 descendant (depth 20)" == lines[0]
        assert ["transform"] == [line.split()[1] for line in lines if line.endswith("◀")]
        assert "retry" not in out  # the retry is the failed publish's child, not in the lineage

    def test_unknown_id(self, history: History, capsys: pytest.CaptureFixture[str]) -> None:
        """An unknown id is an error."""
        assert (1, "", "execlog: error: no execution with id nope\n") == cli(
            capsys, "lineage", "nope", "--db", history.db
        )


class TestChain:
    """``execlog chain CORRELATION_ID``."""

    def test_json_and_text(self, history: History, capsys: pytest.CaptureFixture[str]) -> None:
        """Every execution of the correlation, by start time."""
        expected = [
            history.root,
            history.load,
            history.transform,
            history.step,
            history.failed,
            history.retry,
        ]
        assert expected == ids(cli_json(capsys, "chain", history.root, "--db", history.db))
        code, out, _ = cli(capsys, "chain", history.root, "--db", history.db)
        assert 0 == code
        assert expected == [line.split()[1] for line in out.splitlines()[2:]]

    def test_unknown(self, history: History, capsys: pytest.CaptureFixture[str]) -> None:
        """An unknown correlation id is an error."""
        assert (1, "", "execlog: error: no executions with correlation id nope\n") == cli(
            capsys, "chain", "nope", "--db", history.db
        )


class TestStats:
    """``execlog stats``."""

    def test_json(self, history: History, capsys: pytest.CaptureFixture[str]) -> None:
        """Per name: count, errors, error rate and durations."""
        found = {s["name"]: s for s in cli_json(capsys, "stats", "--db", history.db)}
        assert {"nightly", "load", "transform", "step", "publish", "other"} == set(found)
        publish = found["publish"]
        assert (2, 1, 0.5) == (publish["count"], publish["errors"], publish["error_rate"])
        for key in ("p50_ms", "p95_ms", "max_ms"):
            assert publish[key] >= 0
        assert found["step"]["max_ms"] >= 2

    def test_filters_and_table(self, history: History, capsys: pytest.CaptureFixture[str]) -> None:
        """--name keeps one name; --since in the future keeps none; the table has one row."""
        assert ["load"] == [
            s["name"] for s in cli_json(capsys, "stats", "--name", "load", "--db", history.db)
        ]
        future = (dt.datetime.now(UTC) + dt.timedelta(days=1)).date().isoformat()
        assert [] == cli_json(capsys, "stats", "--since", future, "--db", history.db)
        code, out, _ = cli(capsys, "stats", "--name", "publish", "--db", history.db)
        assert 0 == code
        assert ["publish", "2", "1", "50.0%"] == out.splitlines()[1].split()[:4]


class TestPrune:
    """``execlog prune --older-than AGE``."""

    @pytest.fixture
    def aged(self, tmp_path: Path) -> str:
        """Two trees: one whose root started 40 days ago, one from 5 minutes ago."""
        db = str(tmp_path / "aged.db")
        now = dt.datetime.now(UTC)
        insert(db, "old-root", now - dt.timedelta(days=40))
        insert(
            db,
            "old-child",
            now - dt.timedelta(minutes=1),  # recent, but in an old tree: goes with it
            parent_execution_id="old-root",
            correlation_id="old-root",
        )
        insert(db, "new-root", now - dt.timedelta(minutes=5))
        return db

    def remaining(self, db: str) -> list[str]:
        """Ids still in the database."""
        with execlog.open_store(db) as store:
            return sorted(e.execution_id for e in store.list(limit=100))

    def test_yes(self, aged: str, capsys: pytest.CaptureFixture[str]) -> None:
        """--yes deletes whole trees whose root is older than the cut-off."""
        found = cli_json(capsys, "prune", "--older-than", "30d", "--yes", "--db", aged)
        assert 2 == found["deleted"]
        cutoff = dt.datetime.fromisoformat(found["cutoff"])
        assert abs(dt.datetime.now(UTC) - dt.timedelta(days=30) - cutoff) < dt.timedelta(minutes=1)
        assert ["new-root"] == self.remaining(aged)
        code, out, _ = cli(capsys, "prune", "--older-than", "1d", "-y", "--db", aged)
        assert (0, "deleted 0 executions\n") == (code, out)

    def test_refuses_without_a_terminal(
        self, aged: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Without --yes and without a terminal to ask on, nothing is deleted."""
        monkeypatch.setattr(sys, "stdin", io.StringIO("y\n"))
        code, out, err = cli(capsys, "prune", "--older-than", "30d", "--db", aged)
        assert (1, "") == (code, out)
        assert "confirm with --yes" in err
        assert ["new-root", "old-child", "old-root"] == self.remaining(aged)

    @pytest.mark.parametrize(("answer", "kept"), [("y\n", 1), ("n\n", 3), ("\n", 3)])
    def test_asks_on_a_terminal(
        self,
        aged: str,
        answer: str,
        kept: int,
        capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """On a terminal it asks, and deletes only on yes."""
        stdin = io.StringIO(answer)
        stdin.isatty = lambda: True  # type: ignore[method-assign]
        monkeypatch.setattr(sys, "stdin", stdin)
        code, _, err = cli(capsys, "prune", "--older-than", "30d", "--db", aged)
        assert err.startswith(f"Delete 2 executions from {aged} (every tree whose root started")
        assert "[y/N]" in err
        assert (0 if kept == 1 else 1) == code
        assert kept == len(self.remaining(aged))

    def test_does_not_ask_when_nothing_would_go(
        self, aged: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """On a terminal, with nothing old enough, it deletes nothing without asking."""
        stdin = io.StringIO("")
        stdin.isatty = lambda: True  # type: ignore[method-assign]
        monkeypatch.setattr(sys, "stdin", stdin)
        assert (0, "deleted 0 executions\n", "") == cli(
            capsys, "prune", "--older-than", "90d", "--db", aged
        )

    def test_bad_age(self, aged: str, capsys: pytest.CaptureFixture[str]) -> None:
        """A malformed age is a usage error; --older-than is required."""
        code, _, err = cli(capsys, "prune", "--older-than", "month", "--yes", "--db", aged)
        assert 2 == code
        assert "invalid age 'month'" in err
        assert 2 == cli(capsys, "prune", "--yes", "--db", aged)[0]


class TestExport:
    """``execlog export``."""

    def test_jsonl(self, history: History, capsys: pytest.CaptureFixture[str]) -> None:
        """One JSON object per line, every execution, newest first."""
        code, out, err = cli(capsys, "export", "--db", history.db)
        assert (0, "") == (code, err)
        with execlog.open_store(history.db) as store:
            expected = [e.to_dict() for e in store.list(limit=100)]
        assert expected == [json.loads(line) for line in out.splitlines()]

    def test_pages_through_ties_and_filters(
        self,
        tmp_path: Path,
        capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """Small pages, many rows in one microsecond: each row exactly once, filters applied."""
        monkeypatch.setattr(commands, "PAGE", 3)
        db = str(tmp_path / "ties.db")
        start = dt.datetime(2026, 5, 1, tzinfo=UTC)
        expected = []
        for i in range(20):
            at = start + dt.timedelta(microseconds=i // 7)  # groups of 7 share a microsecond
            insert(db, f"e{i:02d}", at)
            expected.append(f"e{i:02d}")
        code, out, _ = cli(capsys, "export", "--db", db)
        exported = [json.loads(line)["execution_id"] for line in out.splitlines()]
        assert 0 == code
        assert expected[::-1] == exported  # newest first: by time, then by id
        until = (start + dt.timedelta(microseconds=2)).isoformat()
        code, out, _ = cli(capsys, "export", "--db", db, "--until", until)
        assert 14 == len(out.splitlines())
        code, out, _ = cli(
            capsys, "export", "--db", db, "--since", start.isoformat(), "--until", until
        )
        assert expected[:14] == sorted(
            json.loads(line)["execution_id"] for line in out.splitlines()
        )

    def test_progress_only_on_a_terminal(
        self,
        history: History,
        capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """A large export to a terminal shows progress on stderr; otherwise stderr stays empty."""
        monkeypatch.setattr(commands, "PROGRESS_AFTER", 3)
        monkeypatch.setattr(commands, "PAGE", 2)
        assert (0, "") == cli(capsys, "export", "--db", history.db)[::2]
        monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
        code, out, err = cli(capsys, "export", "--db", history.db)
        assert 0 == code
        assert 7 == len(out.splitlines())
        assert "exported 4 executions" in err
        assert err.endswith("exported 7 executions \n")


class TestDatabase:
    """Where ``--db`` points, and databases that cannot be read."""

    def test_db_before_or_after_the_command(
        self, history: History, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """--db is accepted before and after the command."""
        before = cli_json(capsys, "--db", history.db, "list")
        after = cli_json(capsys, "list", "--db", history.db)
        assert 7 == len(before)
        assert before == after

    def test_default_is_env_then_cwd(
        self, history: History, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Without --db: $EXECLOG_DB, else ./execlog.db."""
        monkeypatch.setenv("EXECLOG_DB", history.db)
        assert 7 == len(cli_json(capsys, "list"))
        monkeypatch.delenv("EXECLOG_DB")
        code, _, err = cli(capsys, "list")
        assert (1, "execlog: error: no execlog database at ./execlog.db") == (
            code,
            err.split(" (")[0],
        )
        insert("execlog.db", "here", dt.datetime.now(UTC))  # the test runs in tmp_path
        assert ["here"] == ids(cli_json(capsys, "list"))

    def test_missing_file(self, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
        """A missing database is one line and status 1, and no file is created."""
        code, out, err = cli(capsys, "list", "--db", "nope.db")
        assert (1, "") == (code, out)
        assert err.startswith("execlog: error: no execlog database at nope.db")
        assert 1 == len(err.splitlines())
        assert not (tmp_path / "nope.db").exists()

    def test_unknown_id(self, history: History, capsys: pytest.CaptureFixture[str]) -> None:
        """An unknown id is one line and status 1, for every command that takes one."""
        for command in ("show", "tree", "lineage"):
            assert (1, "", "execlog: error: no execution with id nope\n") == cli(
                capsys, command, "nope", "--db", history.db
            )

    def test_not_sqlite(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """A file that is not SQLite is an error, and stays unchanged."""
        path = tmp_path / "notes.db"
        path.write_bytes(b"these are not the rows you are looking for\n" * 100)
        before = path.read_bytes()
        code, out, err = cli(capsys, "list", "--db", str(path))
        assert (1, "") == (code, out)
        assert "not a usable execlog database" in err
        assert 1 == len(err.splitlines())
        assert before == path.read_bytes()

    def test_other_application(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """Another application's SQLite database is an error."""
        path = str(tmp_path / "app.db")
        conn = sqlite3.connect(path)
        conn.execute("CREATE TABLE users (id INTEGER)")
        conn.commit()
        conn.close()
        code, _, err = cli(capsys, "list", "--db", path)
        assert 1 == code
        assert err.startswith("execlog: error: ")
        assert "Traceback" not in err

    def test_corrupt(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """A database damaged after its header is an error, not a traceback."""
        path = str(tmp_path / "damaged.db")
        execlog.configure(db=path)
        for i in range(200):
            with execlog.execution("big", inputs={"i": i, "pad": "x" * 2000}):
                pass
        execlog.shutdown()
        conn = sqlite3.connect(path)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.close()
        data = bytearray(Path(path).read_bytes())
        assert len(data) > 64 * 1024
        data[8192:] = b"\xa5" * (len(data) - 8192)
        Path(path).write_bytes(bytes(data))
        for argv in (["list"], ["export"], ["stats"], ["show", "x"]):
            code, _, err = cli(capsys, *argv, "--db", path)
            assert 1 == code, argv
            assert err.startswith("execlog: error: "), err
            assert 1 == len(err.splitlines()), err

    def test_directory(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """A directory is not a database."""
        code, _, err = cli(capsys, "list", "--db", str(tmp_path))
        assert 1 == code
        assert err.endswith("is a directory, not an execlog database\n")


class TestUsage:
    """Argument errors, --help and --version."""

    def test_malformed_since(self, history: History, capsys: pytest.CaptureFixture[str]) -> None:
        """A malformed --since is a usage error (status 2) that says what is accepted."""
        code, out, err = cli(capsys, "list", "--since", "yesterday", "--db", history.db)
        assert (2, "") == (code, out)
        assert "argument --since: invalid time 'yesterday'" in err
        assert "2026-11-01" in err

    @pytest.mark.parametrize(
        "argv",
        [[], ["frobnicate"], ["list", "--limit", "-1"], ["list", "--status", "done"], ["show"]],
    )
    def test_usage_errors(self, argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
        """Missing or invalid arguments exit with 2 and print the usage."""
        code, out, err = cli(capsys, *argv)
        assert (2, "") == (code, out)
        assert err.startswith("usage: execlog")

    @pytest.mark.parametrize(
        ("argv", "option"),
        [
            (["list", "--limit", "99999999999999999999"], "--limit"),
            (["list", "--limit", "0"], "--limit"),
            (["list", "--limit", "1000001"], "--limit"),
            (["list", "--limit", "1e3"], "--limit"),
            (["list", "--limit", "9" * 5000], "--limit"),
            (["list", "--offset", "99999999999999999999"], "--offset"),
            (["list", "--offset", "-1"], "--offset"),
            (["lineage", "x", "--depth", "99999999999999999999"], "--depth"),
            (["lineage", "x", "--depth", "1001"], "--depth"),
            (["lineage", "x", "--depth", "-1"], "--depth"),
            (["list", "--since", "9999-12-31T23:59:59-01:00"], "--since"),
            (["list", "--until", "0001-01-01T00:00:00+01:00"], "--until"),
            (["export", "--since", "9999-12-31T23:59:59.999999-00:01"], "--since"),
            (["stats", "--since", "99999999999999999999w"], "--since"),
            (["prune", "--older-than", "1" * 400 + "d", "--yes"], "--older-than"),
        ],
    )
    def test_out_of_range_values_are_usage_errors(
        self, history: History, argv: list[str], option: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Every number and time is range-checked by the parser: exit 2, the usage, the option
        named, and never an OverflowError traceback."""
        code, out, err = cli(capsys, *argv, "--db", history.db)
        assert (2, "") == (code, out)
        assert err.startswith("usage: execlog")
        assert f"argument {option}: " in err
        assert "Traceback" not in err

    def test_largest_values_are_accepted(
        self, history: History, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The bounds themselves are valid."""
        found = cli_json(
            capsys, "list", "--limit", "1000000", "--offset", "1000000000", "--db", history.db
        )
        assert [] == found
        lineage = cli_json(capsys, "lineage", history.root, "--depth", "1000", "--db", history.db)
        assert history.root == lineage["execution"]["execution_id"]

    def test_every_integer_option_is_bounded(self) -> None:
        """No option of any command parses a bare int (unbounded, so it could overflow)."""
        from execlog.cli import _Bounded, _parser

        parser = _parser()
        [sub] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        counted = []
        for name, command in sub.choices.items():
            for action in command._actions:
                assert action.type is not int, (name, action.dest)
                if isinstance(action.type, _Bounded):
                    counted.append(f"{name} {action.option_strings[0]}")
        assert ["list --limit", "list --offset", "lineage --depth", "serve --port"] == counted

    def test_out_of_range_in_a_real_process(self, history: History) -> None:
        """The console script answers a huge --limit with the usage, not a traceback."""
        result = subprocess.run(
            [CONSOLE_SCRIPT, "list", "--limit", "99999999999999999999", "--db", history.db],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert (2, "") == (result.returncode, result.stdout)
        assert "argument --limit: invalid value" in result.stderr
        assert "Traceback" not in result.stderr

    def test_version(self, capsys: pytest.CaptureFixture[str]) -> None:
        """--version prints the installed version."""
        assert (0, f"execlog {execlog.__version__}\n", "") == cli(capsys, "--version")

    def test_times(self) -> None:
        """Ages and moments parse as documented."""
        from execlog._cli.times import age, moment

        now = dt.datetime(2026, 11, 21, 12, tzinfo=UTC)
        assert dt.timedelta(minutes=90) == age("1.5h")
        assert dt.timedelta(weeks=2) == age("2w")
        assert now - dt.timedelta(seconds=45) == moment("45s", now)
        assert dt.datetime(2026, 11, 1, tzinfo=UTC) == moment("2026-11-01", now)
        assert dt.datetime(2026, 11, 1, 7, 30, tzinfo=UTC) == moment("2026-11-01T08:30+01:00")
        for bad in (
            "",
            "1y",
            "-1d",
            "soon",
            "2026-13-01",
            "99999999999d",
            "9999-12-31T23:59:59-01:00",
            "0001-01-01T00:00:00+01:00",
            "1" * 400 + "d",
        ):
            with pytest.raises(argparse.ArgumentTypeError):
                moment(bad, now)


CHILD = """
import os, sys, execlog
with open(sys.argv[1], "w") as f:
    f.write(os.environ.get("EXECLOG_DB", ""))
with execlog.execution("child-work", inputs={"n": 1}):
    with execlog.execution("grandchild"):
        pass
sys.exit(int(sys.argv[2]))
"""


class TestRun:
    """``execlog run -- CMD``."""

    def test_nests_a_python_child(
        self, db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A Python child using execlog records under the run, in the same correlation and db."""
        seen = tmp_path / "seen-db"
        argv = [PYTHON, "-c", CHILD, str(seen), "0"]
        assert (0, "", "") == cli(capsys, "run", "--db", db, "--", *argv)
        run, child, grandchild = rows(db)
        assert Path(PYTHON).name == run["name"]
        assert ("command", "success", None) == (run["kind"], run["status"], run["error_type"])
        assert {"argv": argv} == json.loads(run["inputs"])
        assert {"exit_code": 0} == json.loads(run["output"])
        assert run["duration_ms"] > 0
        assert (run["execution_id"], run["execution_id"]) == (
            child["parent_execution_id"],
            child["correlation_id"],
        )
        assert "child-work" == child["name"]
        assert (child["execution_id"], run["execution_id"]) == (
            grandchild["parent_execution_id"],
            grandchild["correlation_id"],
        )
        assert os.path.abspath(db) == seen.read_text()

    def test_exit_code_passes_through(
        self, db: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
    ) -> None:
        """A non-zero exit is execlog's exit status and an error execution."""
        code = main(["run", "--name", "job", "--db", db, "--", PYTHON, "-c", "raise SystemExit(3)"])
        assert 3 == code
        [run] = rows(db)
        assert ("job", "error") == (run["name"], run["status"])
        assert ("ExitCode", "exit code 3") == (run["error_type"], run["error_message"])
        assert "ExitCode: exit code 3\n" == run["error_stack"]
        assert {"exit_code": 3} == json.loads(run["output"])

    def test_keeps_the_users_execlog_db(
        self,
        db: str,
        tmp_path: Path,
        capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """A child gets EXECLOG_DB only when the environment does not already set it."""
        own = str(tmp_path / "own.db")
        monkeypatch.setenv("EXECLOG_DB", own)
        seen = tmp_path / "seen-db"
        assert 5 == main(["run", "--db", db, "--", PYTHON, "-c", CHILD, str(seen), "5"])
        assert own == seen.read_text()
        assert [Path(PYTHON).name] == [r["name"] for r in rows(db)]
        assert ["child-work", "grandchild"] == [r["name"] for r in rows(own)]

    def test_command_not_found(self, db: str, capsys: pytest.CaptureFixture[str]) -> None:
        """A command that cannot be started: status 127, one line, an error execution."""
        code, out, err = cli(capsys, "run", "--db", db, "--", "no-such-command-xyz")
        assert (127, "") == (code, out)
        assert "execlog: error: cannot run no-such-command-xyz: No such file or directory\n" == err
        [run] = rows(db)
        assert ("error", "FileNotFoundError") == (run["status"], run["error_type"])
        assert {"exit_code": 127} == json.loads(run["output"])

    def test_no_command(self, db: str, capsys: pytest.CaptureFixture[str]) -> None:
        """`execlog run` without a command is a usage error."""
        code, _, err = cli(capsys, "run", "--db", db, "--")
        assert 2 == code
        assert "give the command to run" in err

    @pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
    def test_interrupt_is_passed_on_and_recorded_cancelled(self, tmp_path: Path) -> None:
        """SIGINT to execlog reaches the child; the run is cancelled and exits 130."""
        db = str(tmp_path / "int.db")
        ready = tmp_path / "ready"
        child = textwrap.dedent(
            f"""
            import pathlib, time
            try:  # ready only once a SIGINT lands inside the try
                pathlib.Path({str(ready)!r}).touch()
                time.sleep(30)
            except KeyboardInterrupt:
                print("child interrupted")
                raise SystemExit(130)
            """
        )
        proc = subprocess.Popen(
            [CONSOLE_SCRIPT, "run", "--db", db, "--", PYTHON, "-c", child],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            stdin=subprocess.DEVNULL,
            # A runner that started us in the background may have left SIGINT ignored.
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # noqa: PLW1509
        )
        deadline = time.monotonic() + 20
        while not ready.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
        assert (130, "child interrupted\n") == (proc.returncode, out)
        assert "Traceback" not in err
        [run] = rows(db)
        assert ("cancelled", "KeyboardInterrupt") == (run["status"], run["error_type"])
        assert {"exit_code": 130} == json.loads(run["output"])
        assert run["duration_ms"] < 20_000


class TestProcesses:
    """The real entry points: ``python -m execlog`` and the ``execlog`` console script."""

    def test_module_and_console_script(self, history: History) -> None:
        """Both print the same JSON for the same command."""
        outputs = []
        for prefix in ([PYTHON, "-m", "execlog"], [CONSOLE_SCRIPT]):
            result = subprocess.run(
                [*prefix, "list", "--json", "--db", history.db],
                capture_output=True,
                text=True,
                check=True,
                timeout=30,
            )
            outputs.append(json.loads(result.stdout))
        assert outputs[0] == outputs[1]
        assert history.other == outputs[0][0]["execution_id"]

    def test_errors_are_one_line(self, tmp_path: Path) -> None:
        """A missing database: one line on stderr, status 1, no traceback."""
        result = subprocess.run(
            [CONSOLE_SCRIPT, "show", "x", "--db", str(tmp_path / "missing.db")],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert (1, "") == (result.returncode, result.stdout)
        assert 1 == len(result.stderr.splitlines())
        assert result.stderr.startswith("execlog: error: no execlog database at ")

    def test_run_exit_code(self, tmp_path: Path) -> None:
        """The console script passes the command's exit status through."""
        db = str(tmp_path / "run.db")
        result = subprocess.run(
            [CONSOLE_SCRIPT, "run", "--db", db, "--", PYTHON, "-c", "import sys; sys.exit(3)"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert (3, "", "") == (result.returncode, result.stdout, result.stderr)
        assert ["error"] == [r["status"] for r in rows(db)]

    def test_import_execlog_does_not_import_the_cli(self) -> None:
        """`import execlog` leaves the command line (and argparse) unloaded."""
        code = (
            "import sys, execlog\n"
            "print(sorted(m for m in sys.modules if m == 'argparse' or m == 'execlog.cli' "
            "or m.startswith('execlog._cli')))"
        )
        result = subprocess.run(
            [PYTHON, "-c", code], capture_output=True, text=True, check=True, timeout=30
        )
        assert "[]\n" == result.stdout


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    from execlog.cli import _parser

    parser = _parser()
    [action] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


class TestDocumentation:
    """Every command has help and is documented in the README, whose reference is current."""

    def test_every_command_and_option_has_help(self) -> None:
        """Each sub-command, and each of its options, has help text."""
        from execlog.cli import _parser

        parser = _parser()
        [action] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        assert COMMANDS == [choice.dest for choice in action._choices_actions]
        for choice in action._choices_actions:
            assert choice.help, choice.dest
        for name, sub in _subcommands().items():
            assert sub.description, name
            for option in sub._actions:
                assert option.help, (name, option.dest)

    def test_every_command_is_in_the_readme(self) -> None:
        """The README documents every sub-command (its reference section and the tour)."""
        text = README.read_text(encoding="utf-8")
        for name in COMMANDS:
            assert f"\n#### `execlog {name}`\n" in text, name
            assert f"usage: execlog {name}" in text, name

    @pytest.mark.skipif(
        sys.version_info[:2] != (3, 11),
        reason="argparse lays out help differently in other Python versions; "
        "the README's reference is generated with Python 3.11",
    )
    def test_readme_reference_is_current(self, capsys: pytest.CaptureFixture[str]) -> None:
        """`cog --check README.md` passes: the reference is the current --help output.

        After changing the command line, regenerate it with `cog -r README.md`.
        """
        from cogapp import Cog

        status = Cog().main(["cog", "--check", str(README)])
        assert 0 == status, capsys.readouterr()
