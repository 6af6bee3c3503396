"""The web viewer in a real browser: Debian's chromium driven by Playwright, against a real
``execlog serve`` process on the quickstart's data.

Screenshots go to ``test-artifacts/`` (``EXECLOG_ARTIFACTS`` overrides); with
``EXECLOG_UPDATE_DOCS=1`` the trace view is also saved as ``docs/trace.png`` for the README.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

import execlog
from server_support import ROOT, run_quickstart, serving

if TYPE_CHECKING:
    from collections.abc import Iterator

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(os.environ.get("EXECLOG_ARTIFACTS") or ROOT / "test-artifacts")

REQUIRED = os.environ.get("EXECLOG_REQUIRE_BROWSER") == "1"  # set by .ci/run
try:
    from playwright import sync_api
except ImportError:
    if REQUIRED:
        raise
    pytest.skip("playwright is not installed", allow_module_level=True)
if not shutil.which(CHROMIUM):
    if REQUIRED:
        pytest.fail(f"no browser at {CHROMIUM}: apt-get install chromium", pytrace=False)
    pytest.skip(f"no browser at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    tab.on("dialog", lambda dialog: (errors.append(f"dialog: {dialog.message}"), dialog.dismiss()))
    tab.errors = errors
    yield tab
    context.close()


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


@pytest.fixture(scope="module")
def quickstart_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    db = run_quickstart(tmp_path_factory.mktemp("viewer"), runs=3)
    with serving(db) as url:
        yield url


class TestJourney:
    def test_runs_trace_execution_diff(self, page: Any, quickstart_server: str) -> None:
        """From the runs list to a trace, an execution in the panel, and the retry's diff."""
        url = quickstart_server
        page.goto(url + "/")
        runs = page.locator("tr.run")
        assert 3 == runs.count()
        first = runs.first
        assert "nightly-report" in first.inner_text()
        cells = [c.strip() for c in first.locator("td").all_inner_texts()]
        assert ("success", "13", "2") == (cells[0], cells[4], cells[5])
        shot(page, "runs")

        first.locator("a.run-link").click()
        page.wait_for_url(re.compile(r"/trace/"))
        rows = page.locator("#waterfall .row")
        assert 13 == rows.count()
        assert ["nightly-report", "fetch_all"] == rows.locator("a.name").all_inner_texts()[:2]
        assert 1 == page.locator("#waterfall .row.retry").count()
        assert 2 == page.locator("#waterfall .row.s-error").count()
        page.locator("#waterfall .row", has_text="summarise").locator("svg").click()
        page.wait_for_selector("#panel h2:has-text('summarise')")
        assert "selected=" in page.url
        assert page.locator("#waterfall .row.selected", has_text="summarise").count() == 1
        assert "best" in page.locator("#panel").inner_text()
        shot(page, "trace")
        if os.environ.get("EXECLOG_UPDATE_DOCS") == "1":
            (ROOT / "docs").mkdir(exist_ok=True)
            page.screenshot(path=str(ROOT / "docs" / "trace.png"))

        page.locator("#waterfall .row.retry a.retry-mark").click()
        page.wait_for_url(re.compile(r"/diff$"))
        inputs = page.locator("section.diff").nth(1)
        assert inputs.locator("h3").inner_text().startswith("Inputs")
        changed = inputs.locator("tr.changed")
        assert 1 == changed.count()
        assert ['"attempt": 1', '"attempt": 2'] == [
            t.strip() for t in changed.first.locator("td").all_inner_texts()
        ]
        error = page.locator("section.diff").nth(3)
        assert "PublishError" in error.inner_text()
        shot(page, "diff")

        page.locator(".diff-heads a").first.click()
        page.wait_for_url(re.compile(r"/execution/[^/]+$"))
        assert "publish-attempt" in page.locator("h1").inner_text()
        assert "Retried by" in page.locator("body").inner_text()
        page.locator("details:has(summary:text('Traceback'))").first.wait_for()
        assert "PublishError" in page.locator("pre.stack").first.inner_text()
        shot(page, "execution")
        assert [] == page.errors

    def test_stats_and_filters(self, page: Any, quickstart_server: str) -> None:
        """Statistics with histograms; a name leads to its executions; filters live in the URL."""
        url = quickstart_server
        page.goto(url + "/stats")
        assert page.locator("svg.histogram").count() >= 6
        publish = page.locator("tr", has_text="publish-attempt")
        assert "50.0%" in publish.inner_text()
        shot(page, "stats")
        page.locator("a", has_text=re.compile(r"^validate$")).click()
        page.wait_for_url(re.compile(r"/executions\?name=validate"))
        assert 3 == page.locator("tbody tr").count()

        page.goto(url + "/")
        page.fill("input[name=q]", "Service Unavailable")
        page.select_option("select[name=status]", "success")
        page.locator("form.filters button").click()
        page.wait_for_url(re.compile(r"q=Service\+Unavailable"))
        assert "status=success" in page.url
        assert 3 == page.locator("tr.run").count()
        page.goto(url + "/?q=no-such-text-anywhere")
        assert 0 == page.locator("tr.run").count()
        page.goto(url + "/?since=not-a-time")
        assert "since" in page.locator(".problem").inner_text()
        assert [] == page.errors

    def test_phone_and_dark_mode(self, browser: Any, quickstart_server: str) -> None:
        """Readable on a phone, in dark mode: the trace stacks the panel under the waterfall."""
        context = browser.new_context(
            viewport={"width": 390, "height": 844}, color_scheme="dark", is_mobile=True
        )
        tab = context.new_page()
        tab.goto(quickstart_server + "/")
        tab.locator("a.run-link").first.click()
        tab.wait_for_url(re.compile(r"/trace/"))
        background = tab.evaluate("getComputedStyle(document.body).backgroundColor")
        assert "rgb(20, 23, 29)" == background
        waterfall = tab.locator("#waterfall").bounding_box()
        panel = tab.locator("#panel").bounding_box()
        assert panel["y"] >= waterfall["y"] + waterfall["height"]
        assert tab.evaluate("document.documentElement.scrollWidth") <= 390 + 1
        shot(tab, "trace-phone-dark")
        context.close()


class TestLive:
    def test_running_trace_updates(self, page: Any, tmp_path: Path) -> None:
        """A trace with a running execution is drawn open-ended and updates when it ends."""
        db = str(tmp_path / "live.db")
        execlog.configure(db=db)
        with serving(db) as url:
            with execlog.execution("long-job") as job:
                with execlog.execution("quick-step"):
                    pass
                assert execlog.flush(timeout=10)
                page.goto(f"{url}/trace/{job.correlation_id}")
                assert "1" == page.locator("#waterfall").get_attribute("data-running")
                assert 1 == page.locator("#waterfall rect.open").count()
                shot(page, "trace-live")
            assert execlog.flush(timeout=10)
            page.wait_for_selector("#waterfall[data-running='0']", timeout=15_000)
            assert 0 == page.locator("#waterfall rect.open").count()
            assert "success" in page.locator("#panel").inner_text()
        assert [] == page.errors


class TestLargeTrace:
    def test_a_trace_of_2000_executions(self, page: Any, tmp_path: Path) -> None:
        """A fan-out of 2,000 executions draws every bar, and a bar far down still opens."""
        db = str(tmp_path / "wide.db")
        execlog.configure(db=db)
        with execlog.execution("fan-out", kind="workflow") as root:
            for i in range(2000):
                with execlog.execution(f"item-{i}", inputs={"i": i}):
                    pass
        assert execlog.flush(timeout=30)
        with serving(db) as url:
            page.goto(f"{url}/trace/{root.correlation_id}")
            assert 2001 == page.locator("#waterfall .row").count()
            last = page.locator("#waterfall .row", has_text="item-1999")
            last.scroll_into_view_if_needed()
            last.locator("svg").click()
            page.wait_for_selector("#panel h2:has-text('item-1999')")
            assert "1999" in page.locator("#panel").inner_text()
            shot(page, "trace-2000")
        assert [] == page.errors


PAYLOADS = [
    "<script>window.__xss = 1</script>",
    '<img src=x onerror="window.__xss = 2">',
    "javascript:window.__xss = 3",
    "</script><script>window.__xss = 4</script>",
    '"><svg onload="window.__xss = 5">',
]


class TestEscaping:
    def test_payloads_are_shown_literally_and_never_run(self, page: Any, tmp_path: Path) -> None:
        """HTML/JS in names, inputs, tags and errors is text: no script runs on any page."""
        db = str(tmp_path / "xss.db")
        execlog.configure(db=db)
        with execlog.execution(
            PAYLOADS[0],
            inputs={"html": PAYLOADS[1], PAYLOADS[4]: PAYLOADS[3]},
            tags={"link": PAYLOADS[2]},
        ) as root:
            with execlog.execution(PAYLOADS[1], inputs={"x": PAYLOADS[3]}) as first:
                first.tag(url=PAYLOADS[2])
            with (
                pytest.raises(ValueError),
                execlog.execution(PAYLOADS[4], inputs={"attempt": PAYLOADS[0]}) as failing,
            ):
                raise ValueError(PAYLOADS[3])
            with execlog.execution(
                PAYLOADS[2], parent=failing, trigger_kind="retry", inputs={"attempt": PAYLOADS[1]}
            ) as retry:
                retry.set_output(PAYLOADS[3])
        assert execlog.flush(timeout=10)
        with serving(db) as url:
            pages = [
                "/",
                f"/?q={PAYLOADS[3]}",
                f"/trace/{root.correlation_id}",
                f"/execution/{root.execution_id}",
                f"/execution/{failing.execution_id}",
                f"/execution/{retry.execution_id}",
                f"/execution/{retry.execution_id}/diff",
                "/stats",
                f"/executions?name={PAYLOADS[1]}",
            ]
            for path in pages:
                page.goto(url + path.replace("#", "%23"))
                page.wait_for_load_state("load")
                assert page.evaluate("window.__xss") is None, path
                assert 0 == page.locator("body script:not([type='application/json'])").count(), path
                assert 0 == page.locator("main img, main svg[onload], main [onerror]").count(), path
            page.goto(f"{url}/trace/{root.correlation_id}")
            text = page.locator("body").inner_text()
            assert PAYLOADS[0] in text
            assert PAYLOADS[1] in text
            page.locator("#waterfall .row", has_text="javascript:").locator("svg").click()
            page.wait_for_selector("#panel h2:has-text('javascript:')")
            assert page.evaluate("window.__xss") is None
            for link in page.locator("a").evaluate_all(
                "els => els.map(e => e.getAttribute('href'))"
            ):
                assert not link.lower().startswith("javascript:"), link
            page.goto(f"{url}/execution/{root.execution_id}")
            body = page.locator("body").inner_text()
            assert PAYLOADS[3] in body
            assert PAYLOADS[2] in body
            shot(page, "escaping")
        assert [] == page.errors
