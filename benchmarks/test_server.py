"""Answer times of ``execlog serve`` on the large history of ``test_queries.py``.

Each benchmark is one HTTP request to a real uvicorn server (on a thread of this process), so
the figures include routing, encoding and the local round trip: what a client sees, an upper
bound on the server's own time. ``python -m pytest benchmarks/test_server.py -q`` (the
1,000,000-row database is built once and cached, see ``test_queries.py``).
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

import execlog
from execlog.server import create_app
from test_queries import BASE_US, EPOCH, SPAN_US, WIDE_FANOUT, History, _cycle, history

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from server_support import live

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["history"]  # the fixture, shared with test_queries.py

LAST_DAY = (EPOCH + dt.timedelta(microseconds=BASE_US + SPAN_US - 86_400_000_000)).isoformat()
#: Before the first execution: a search over the whole history.
BEFORE_ALL = (EPOCH + dt.timedelta(microseconds=BASE_US - 1)).isoformat()
#: Text in error messages of many runs, and text in none.
FOUND, NOWHERE = "not numeric", "no such text"


@pytest.fixture(scope="module")
def client(history: History) -> Iterator[httpx.Client]:
    with (
        execlog.open_store(history.path) as store,
        live(create_app(store)) as url,
        httpx.Client(base_url=url, timeout=60) as opened,
    ):
        yield opened


def get(client: httpx.Client, path: str, **params: Any) -> httpx.Response:
    answer = client.get(path, params=params)
    assert answer.status_code == 200, (path, answer.text[:300])
    return answer


# -- the JSON API ---------------------------------------------------------------------------

API_LISTS = {
    "newest": {},
    "name": {"name": "load"},
    "name_status": {"name": "load", "status": "error"},
    "status_error": {"status": "error"},
    "since_last_day": {"since": LAST_DAY},
    "offset_1000": {"name": "load", "offset": 1000},
}


@pytest.mark.benchmark(group="api")
@pytest.mark.parametrize("case", list(API_LISTS))
def test_api_list(benchmark: Any, client: httpx.Client, case: str) -> None:
    answer = benchmark(get, client, "/api/executions", **API_LISTS[case])
    assert "executions" in answer.json()


@pytest.mark.benchmark(group="api")
def test_api_get(benchmark: Any, client: httpx.Client, history: History) -> None:
    ids = _cycle(history.sample.middles + history.sample.leaves)
    benchmark(lambda: get(client, f"/api/executions/{next(ids)}"))


@pytest.mark.benchmark(group="api")
def test_api_lineage(benchmark: Any, client: httpx.Client, history: History) -> None:
    ids = _cycle(history.sample.middles)
    benchmark(lambda: get(client, f"/api/executions/{next(ids)}/lineage"))


@pytest.mark.benchmark(group="api")
def test_api_lineage_of_a_2000_wide_root(
    benchmark: Any, client: httpx.Client, history: History
) -> None:
    answer = benchmark(get, client, f"/api/executions/{history.sample.wide_root}/lineage")
    assert len(answer.json()["descendants"]) >= WIDE_FANOUT


@pytest.mark.benchmark(group="api")
def test_api_tree(benchmark: Any, client: httpx.Client, history: History) -> None:
    ids = _cycle(history.sample.roots)
    benchmark(lambda: get(client, f"/api/executions/{next(ids)}/tree"))


@pytest.mark.benchmark(group="api")
def test_api_tree_of_a_2000_wide_root(
    benchmark: Any, client: httpx.Client, history: History
) -> None:
    answer = benchmark(get, client, f"/api/executions/{history.sample.wide_root}/tree")
    assert len(answer.json()["children"]) >= WIDE_FANOUT


@pytest.mark.benchmark(group="api")
def test_api_correlation(benchmark: Any, client: httpx.Client, history: History) -> None:
    ids = _cycle(history.sample.correlations)
    benchmark(lambda: get(client, f"/api/correlations/{next(ids)}"))


@pytest.mark.benchmark(group="api")
def test_api_stats_of_one_name(benchmark: Any, client: httpx.Client) -> None:
    benchmark(get, client, "/api/stats", name="transform")


@pytest.mark.benchmark(group="api")
def test_api_stats_of_the_last_day(benchmark: Any, client: httpx.Client) -> None:
    benchmark(get, client, "/api/stats", since=LAST_DAY)


@pytest.mark.benchmark(group="api")
def test_api_stats_of_everything(benchmark: Any, client: httpx.Client) -> None:
    benchmark.pedantic(get, (client, "/api/stats"), rounds=3, iterations=1)


@pytest.mark.benchmark(group="api")
def test_api_runs(benchmark: Any, client: httpx.Client) -> None:
    benchmark(get, client, "/api/runs")


@pytest.mark.benchmark(group="api")
@pytest.mark.parametrize("text", [FOUND, NOWHERE], ids=["found", "nowhere"])
def test_api_runs_search(benchmark: Any, client: httpx.Client, text: str) -> None:
    """A text search over the whole history (the API has no default time range)."""
    answer = benchmark(get, client, "/api/runs", q=text)
    assert bool(answer.json()["runs"]) == (text == FOUND)


# -- the viewer's pages ---------------------------------------------------------------------


@pytest.mark.benchmark(group="pages")
@pytest.mark.parametrize(
    "query",
    [
        {},
        {"name": "nightly-etl"},
        {"status": "error"},
        {"q": FOUND},
        {"q": FOUND, "since": BEFORE_ALL},
        {"q": NOWHERE, "since": BEFORE_ALL},
        {"offset": 500},
    ],
    ids=[
        "newest",
        "name",
        "status",
        "search",
        "search_all",
        "search_nowhere_all",
        "offset_500",
    ],
)
def test_page_runs(benchmark: Any, client: httpx.Client, query: dict[str, Any]) -> None:
    assert "<table" in benchmark(get, client, "/", **query).text


@pytest.mark.benchmark(group="pages")
def test_page_trace(benchmark: Any, client: httpx.Client, history: History) -> None:
    ids = _cycle(history.sample.correlations)
    benchmark(lambda: get(client, f"/trace/{next(ids)}"))


@pytest.mark.benchmark(group="pages")
def test_page_trace_of_2000_executions(
    benchmark: Any, client: httpx.Client, history: History
) -> None:
    wide = get(client, f"/api/executions/{history.sample.wide_root}").json()
    page = benchmark(get, client, f"/trace/{wide['correlation_id']}")
    assert page.text.count('class="row ') >= WIDE_FANOUT


@pytest.mark.benchmark(group="pages")
def test_page_execution(benchmark: Any, client: httpx.Client, history: History) -> None:
    ids = _cycle(history.sample.middles)
    benchmark(lambda: get(client, f"/execution/{next(ids)}"))


@pytest.mark.benchmark(group="pages")
def test_page_stats_of_the_last_day(benchmark: Any, client: httpx.Client) -> None:
    benchmark(get, client, "/stats", since=LAST_DAY)


@pytest.mark.benchmark(group="pages")
def test_page_stats_of_everything(benchmark: Any, client: httpx.Client) -> None:
    benchmark.pedantic(get, (client, "/stats"), rounds=3, iterations=1)


@pytest.mark.benchmark(group="pages")
def test_page_executions_of_one_name(benchmark: Any, client: httpx.Client) -> None:
    benchmark(get, client, "/executions", name="load")
