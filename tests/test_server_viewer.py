"""The viewer's pages over HTTP (no browser): content, escaping, headers; and its helpers."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import httpx
import pytest

import execlog
from execlog.server import create_app
from execlog.server.viewer import duration, is_retry, side_by_side, waterfall
from execlog.store import Execution
from server_support import live

if TYPE_CHECKING:
    from collections.abc import Iterator

T0 = dt.datetime(2026, 11, 21, 8, 0, tzinfo=dt.timezone.utc)


def ex(
    execution_id: str,
    parent: str | None = None,
    *,
    name: str = "step",
    status: str = "success",
    start_ms: float = 0,
    ms: float | None = 10,
    trigger: str = "child",
) -> Execution:
    started = T0 + dt.timedelta(milliseconds=start_ms)
    return Execution(
        execution_id=execution_id,
        name=name,
        kind="function",
        status=status,
        started_at=started,
        ended_at=None if ms is None else started + dt.timedelta(milliseconds=ms),
        duration_ms=ms,
        inputs=None,
        output=None,
        error_type=None,
        error_message=None,
        error_stack=None,
        parent_execution_id=parent,
        correlation_id="c",
        trigger_kind=trigger,
        run_id=None,
        host="h",
    )


class TestHelpers:
    def test_waterfall_nests_and_places_bars(self) -> None:
        """Rows come depth first; bars sit on one time axis; running ones reach now."""
        chain = [
            ex("r", name="root", ms=100, trigger="manual"),
            ex("a", "r", start_ms=10, ms=20),
            ex("b", "r", start_ms=40, ms=None, status="running"),
            ex("a1", "a", start_ms=12, ms=5),
        ]
        drawn = waterfall(chain, now=T0 + dt.timedelta(milliseconds=200))
        assert ["r", "a", "a1", "b"] == [row["id"] for row in drawn["rows"]]
        assert [0, 1, 2, 1] == [row["indent"] for row in drawn["rows"]]
        assert drawn["running"]
        b = drawn["rows"][3]
        assert (True, "200.00", "800.00") == (b["open"], b["x"], b["width"])
        assert ("50.00", "100.00") == (drawn["rows"][1]["x"], drawn["rows"][1]["width"])

    def test_retry_detection(self) -> None:
        """A retry: triggered so, or an explicit parent of the same name that failed."""
        failed = ex("f", name="publish", status="error")
        assert is_retry(ex("x", "f", trigger="retry"), None)
        assert is_retry(ex("x", "f", name="publish"), failed)
        assert not is_retry(ex("x", "f", name="other"), failed)
        assert not is_retry(ex("x", None, trigger="retry"), None)

    def test_side_by_side(self) -> None:
        """Equal, changed, removed and added lines are paired."""
        rows = side_by_side("a\nb\nc", "a\nB\nc\nd")
        assert [
            ("same", "a", "a"),
            ("changed", "b", "B"),
            ("same", "c", "c"),
            ("added", "", "d"),
        ] == rows

    @pytest.mark.parametrize(
        ("ms", "text"),
        [
            (None, "—"),
            (0.25, "250 µs"),
            (12.34, "12.3 ms"),
            (450, "450 ms"),
            (4560, "4.56 s"),
            (187_000, "3m 07s"),
        ],
    )
    def test_duration(self, ms: float | None, text: str) -> None:
        """Durations read as people write them."""
        assert text == duration(ms)


@pytest.fixture
def site(any_db: str) -> Iterator[tuple[httpx.Client, dict[str, str]]]:
    """The viewer over a small history, on each backend in turn (the pages read the same)."""
    db = any_db
    execlog.configure(db=db)
    with execlog.execution(
        "nightly <b>bold</b>", inputs={"html": "<script>alert(1)</script>"}
    ) as root:
        with (
            pytest.raises(RuntimeError),
            execlog.execution("publish", inputs={"attempt": 1}) as first,
        ):
            raise RuntimeError("503 & <down>")
        with execlog.execution("publish", parent=first, inputs={"attempt": 2}) as second:
            execlog.event("sent <i>upload</i>", level="warning", bytes=10, token="sk-9")
            second.set_output("ok")
    assert execlog.flush(timeout=10)
    ids = {
        "root": root.execution_id,
        "first": first.execution_id,
        "second": second.execution_id,
        "cid": root.correlation_id,
    }
    store = execlog.open_store(db)
    with live(create_app(store)) as url, httpx.Client(base_url=url) as client:
        yield client, ids
    store.close()


class TestPages:
    def test_every_page_answers_with_csp(self, site: tuple[httpx.Client, dict[str, str]]) -> None:
        """Each page is HTML with the strict CSP; unknown ids are HTML 404 pages."""
        client, ids = site
        for path in [
            "/",
            "/executions",
            "/stats",
            f"/trace/{ids['cid']}",
            f"/trace/{ids['cid']}/waterfall",
            f"/execution/{ids['second']}",
            f"/execution/{ids['second']}/panel",
            f"/execution/{ids['second']}/diff",
        ]:
            page = client.get(path)
            assert 200 == page.status_code, path
            assert page.headers["content-type"].startswith("text/html"), path
            assert "script-src 'self'" in page.headers["content-security-policy"], path
        missing = client.get("/execution/nope")
        assert (404, True) == (missing.status_code, "no execution" in missing.text)
        assert 404 == client.get("/trace/nope").status_code
        assert 404 == client.get(f"/execution/{ids['root']}/diff").status_code
        assert client.get("/static/viewer.js").status_code == 200

    def test_values_are_escaped_in_the_html(
        self, site: tuple[httpx.Client, dict[str, str]]
    ) -> None:
        """Names, inputs and errors arrive escaped; no page holds inline script or handlers."""
        client, ids = site
        trace = client.get(f"/trace/{ids['cid']}").text
        assert "nightly &lt;b&gt;bold&lt;/b&gt;" in trace
        assert "<b>bold" not in trace
        execution = client.get(f"/execution/{ids['root']}").text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in execution
        assert "503 &amp; &lt;down&gt;" in client.get(f"/execution/{ids['first']}").text
        for text in (trace, execution):
            assert " onclick=" not in text
            assert "<script>" not in text

    def test_events_are_shown_escaped(self, site: tuple[httpx.Client, dict[str, str]]) -> None:
        """The execution page and the trace's panel list its events, escaped and redacted."""
        client, ids = site
        for path in (f"/execution/{ids['second']}", f"/execution/{ids['second']}/panel"):
            page = client.get(path).text
            assert "Events (1)" in page, path
            assert "<strong>warning</strong>" in page
            assert "sent &lt;i&gt;upload&lt;/i&gt;" in page
            assert "<i>upload" not in page
            assert "[REDACTED]" in page
            assert "sk-9" not in page
        assert "Events (" not in client.get(f"/execution/{ids['first']}").text

    def test_explicit_parent_retry_has_a_diff(
        self, site: tuple[httpx.Client, dict[str, str]]
    ) -> None:
        """An explicit parent= of the same name that failed counts as a retry: marked and diffed."""
        client, ids = site
        assert "Diff with the attempt it repeats" in client.get(f"/execution/{ids['second']}").text
        assert 'class="row s-success retry"' in client.get(f"/trace/{ids['cid']}").text
        diff = client.get(f"/execution/{ids['second']}/diff").text
        changed = '<tr class="changed"><td><pre>  &#34;attempt&#34;: 1</pre></td>'
        assert changed + "<td><pre>  &#34;attempt&#34;: 2</pre></td></tr>" in diff
        assert "Retried by" in client.get(f"/execution/{ids['first']}").text

    def test_runs_filters_and_paging(self, site: tuple[httpx.Client, dict[str, str]]) -> None:
        """The runs page filters by status and text, and shows a bad filter instead of failing."""
        client, _ = site
        assert 1 == client.get("/").text.count('class="run"')
        assert 1 == client.get("/", params={"q": "down"}).text.count('class="run"')
        searched = client.get("/", params={"q": "down"}).text
        assert "Searching the runs of the last 7d" in searched
        assert "Searching" not in client.get("/", params={"q": "down", "since": "1h"}).text
        assert 0 == client.get("/", params={"status": "error"}).text.count('class="run"')
        bad = client.get("/", params={"since": "whenever"})
        assert 200 == bad.status_code
        assert 'class="problem"' in bad.text
