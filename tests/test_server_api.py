"""The JSON API and the collector of ``execlog serve``, over real HTTP (uvicorn)."""

from __future__ import annotations

import gzip
import subprocess
import sys
from typing import TYPE_CHECKING, Any

import httpx
import pytest

import execlog
from conftest import BACKENDS
from execlog._recorder import RECORDER
from execlog.server import create_app
from server_support import live, record_quickstart, serving

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


@pytest.fixture(scope="module", params=BACKENDS)
def quickstart_db(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The quickstart's runs recorded into each backend in turn: the API answers alike."""
    if request.param == "postgresql":
        cluster = request.getfixturevalue("pg_cluster")
        schema = cluster.new_schema()
        db = str(cluster.url(schema))
    else:
        db = str(tmp_path_factory.mktemp("api") / "quickstart.db")
    record_quickstart(db, runs=3)
    execlog.shutdown()
    yield db
    if request.param == "postgresql":
        RECORDER.reset()
        cluster.drop_schema(schema)


@pytest.fixture(scope="module")
def api(quickstart_db: str) -> Iterator[httpx.Client]:
    store = execlog.open_store(quickstart_db)
    with live(create_app(store, loopback_only=True)) as url, httpx.Client(base_url=url) as client:
        yield client
    store.close()


def record(execution_id: str, status: str = "success", **fields: Any) -> dict[str, Any]:
    return {
        "execution_id": execution_id,
        "name": fields.pop("name", "job"),
        "status": status,
        "started_at": fields.pop("started_at", "2026-11-21T08:00:00Z"),
        **fields,
    }


class TestRead:
    def test_list_shape_and_order(self, api: httpx.Client) -> None:
        """A page of executions, newest first, with limit, offset and has_more."""
        answer = api.get("/api/executions", params={"limit": 5}).json()
        assert {"executions", "limit", "offset", "has_more"} <= set(answer)
        assert (5, 0, True) == (answer["limit"], answer["offset"], answer["has_more"])
        starts = [e["started_at"] for e in answer["executions"]]
        assert sorted(starts, reverse=True) == starts
        assert all(s.endswith("+00:00") for s in starts)

    def test_paging_neither_skips_nor_repeats(self, api: httpx.Client) -> None:
        """Walking pages of 4 gives every execution exactly once."""
        everything = api.get("/api/executions", params={"limit": 1000}).json()["executions"]
        seen: list[str] = []
        offset = 0
        while True:
            page = api.get("/api/executions", params={"limit": 4, "offset": offset}).json()
            seen += [e["execution_id"] for e in page["executions"]]
            offset += 4
            if not page["has_more"]:
                break
        assert [e["execution_id"] for e in everything] == seen
        assert len(set(seen)) == len(seen) == 39

    def test_filters(self, api: httpx.Client) -> None:
        """name, status and since/until (ISO with Z, a date, an age) filter the list."""
        failed = api.get("/api/executions", params={"status": "error"}).json()["executions"]
        assert {"publish", "publish-attempt"} == {e["name"] for e in failed}
        named = api.get("/api/executions", params={"name": "validate"}).json()["executions"]
        assert 3 == len(named)
        assert 39 == len(
            api.get("/api/executions", params={"since": "1h", "limit": 100}).json()["executions"]
        )
        assert [] == api.get("/api/executions", params={"until": "2000-01-01"}).json()["executions"]
        # fractions of any length up to 6 digits, on every Python version (3.10 takes 3 or 6)
        odd = {"since": "2000-01-01T00:00:00.5Z", "until": "2999-01-01T00:00:00.12345+01:00"}
        assert 200 == api.get("/api/executions", params=odd).status_code
        assert (
            []
            == api.get("/api/executions", params={"since": "2999-01-01T00:00:00Z"}).json()[
                "executions"
            ]
        )

    def test_one_execution_and_404(self, api: httpx.Client) -> None:
        """An execution by id; an unknown id is a 404 with a JSON detail."""
        first = api.get("/api/executions", params={"limit": 1}).json()["executions"][0]
        assert first == api.get(f"/api/executions/{first['execution_id']}").json()
        missing = api.get("/api/executions/no-such-id")
        assert 404 == missing.status_code
        assert "no-such-id" in missing.json()["detail"]

    def test_tree_lineage_correlation(self, api: httpx.Client) -> None:
        """Tree, lineage and correlation of the quickstart's run agree with the store."""
        root = api.get("/api/executions", params={"name": "nightly-report", "limit": 1}).json()[
            "executions"
        ][0]
        tree = api.get(f"/api/executions/{root['execution_id']}/tree").json()
        assert ["fetch_all", "validate", "summarise", "publish-attempt"] == [
            c["name"] for c in tree["children"]
        ]
        retry = tree["children"][3]["children"]
        assert ["publish", "publish-attempt"] == [c["name"] for c in retry]
        chain = api.get(f"/api/correlations/{root['correlation_id']}").json()
        assert (13, root["execution_id"]) == (chain["total_executions"], chain["root_execution_id"])
        lineage = api.get(f"/api/executions/{retry[1]['execution_id']}/lineage").json()
        assert ["nightly-report", "publish-attempt"] == [a["name"] for a in lineage["ancestors"]]
        assert ["publish"] == [d["name"] for d in lineage["descendants"]]
        assert 404 == api.get("/api/correlations/nope").status_code
        assert 404 == api.get("/api/executions/nope/tree").status_code
        assert 404 == api.get("/api/executions/nope/lineage").status_code

    def test_stats(self, api: httpx.Client) -> None:
        """Per-name statistics with the fields API.md names."""
        stats = {s["name"]: s for s in api.get("/api/stats").json()}
        assert {"name", "count", "errors", "error_rate", "p50_ms", "p95_ms", "max_ms"} <= set(
            stats["publish"]
        )
        assert (6, 3) == (stats["publish"]["count"], stats["publish"]["errors"])
        assert [s["name"] for s in api.get("/api/stats", params={"name": "validate"}).json()] == [
            "validate"
        ]

    @pytest.mark.parametrize(
        ("path", "params", "parameter"),
        [
            ("/api/executions", {"since": "yesterday-ish"}, "since"),
            ("/api/executions", {"until": "2026-13-45"}, "until"),
            ("/api/executions", {"limit": -1}, "limit"),
            ("/api/executions", {"limit": 1001}, "limit"),
            ("/api/executions", {"offset": -3}, "offset"),
            ("/api/executions", {"offset": 2**64}, "offset"),
            ("/api/runs", {"offset": 2**63}, "offset"),
            ("/api/executions", {"status": "finished"}, "status"),
            ("/api/stats", {"since": "soon"}, "since"),
            ("/api/executions/x/lineage", {"depth": 1001}, "depth"),
            ("/api/executions/x/lineage", {"depth": -1}, "depth"),
        ],
    )
    def test_bad_parameter_is_422_naming_it(
        self, api: httpx.Client, path: str, params: dict[str, Any], parameter: str
    ) -> None:
        """A bad parameter is a 422 whose detail names it."""
        answer = api.get(path, params=params)
        assert 422 == answer.status_code
        assert parameter in str(answer.json()["detail"])

    def test_security_headers(self, api: httpx.Client) -> None:
        """Every answer carries a strict CSP; a foreign Host is refused on loopback."""
        answer = api.get("/api/stats")
        csp = answer.headers["content-security-policy"]
        assert "script-src 'self'" in csp
        assert "unsafe-inline" not in csp
        assert "nosniff" == answer.headers["x-content-type-options"]
        assert 400 == api.get("/api/stats", headers={"host": "attacker.example"}).status_code

    def test_openapi_document(self, api: httpx.Client) -> None:
        """The OpenAPI document lists every endpoint of API.md section 5."""
        paths = api.get("/api/openapi.json").json()["paths"]
        assert {
            "/api/executions",
            "/api/executions/{execution_id}",
            "/api/executions/{execution_id}/lineage",
            "/api/executions/{execution_id}/tree",
            "/api/correlations/{correlation_id}",
            "/api/stats",
        } <= set(paths)
        assert "post" in paths["/api/executions"]


@pytest.fixture
def collector(any_db: str) -> Iterator[tuple[httpx.Client, execlog.Store]]:
    """A collector over each backend in turn: a SQLite file, then a PostgreSQL database."""
    store = execlog.open_store(any_db, create=True)
    with (
        live(create_app(store, token="t0ken", max_body_bytes=64 * 1024)) as url,
        httpx.Client(base_url=url, headers={"Authorization": "Bearer t0ken"}) as client,
    ):
        yield client, store
    store.close()


class TestIngest:
    def test_events_stored_and_rejected_by_index_and_field(
        self, collector: tuple[httpx.Client, execlog.Store]
    ) -> None:
        """Events in a batch are stored with their executions; bad ones are named, good kept."""
        client, store = collector
        events = [
            {
                "execution_id": "a",
                "at": "2026-11-21T08:00:01Z",
                "level": "info",
                "message": "started",
                "attributes": {"rows": 3},
                "logger": "etl",
            },
            {"execution_id": "a", "at": "2026-11-21T08:00:02Z", "level": "loud", "message": "x"},
            {"execution_id": "a", "at": "never", "level": "info", "message": "x"},
            {"execution_id": "a", "at": "2026-11-21T08:00:03Z", "level": "error", "message": 7},
            {
                "execution_id": "a",
                "at": "2026-11-21T08:00:04Z",
                "level": "error",
                "message": "done",
            },
        ]
        answer = client.post(
            "/api/executions", json={"executions": [record("a")], "events": events}
        )
        assert 200 == answer.status_code
        body = answer.json()
        assert (1, 2) == (body["stored"], body["events_stored"])
        assert [(1, "level"), (2, "at"), (3, "message")] == [
            (r["index"], r["field"]) for r in body["events_rejected"]
        ]
        found = store.events("a")
        assert [("info", "started", {"rows": 3}, "etl"), ("error", "done", {}, None)] == [
            (e.level, e.message, e.attributes, e.logger) for e in found
        ]
        shown = client.get("/api/executions/a").json()["events"]
        assert ["started", "done"] == [e["message"] for e in shown]
        assert (
            422 == client.post("/api/executions", json={"executions": [], "events": {}}).status_code
        )

    def test_stores_and_rejects_by_index_and_field(
        self, collector: tuple[httpx.Client, execlog.Store]
    ) -> None:
        """Good records are stored even when others in the batch are bad."""
        client, store = collector
        batch = [
            record("a", inputs={"x": 1}, tags={"team": "data"}, duration_ms=3.5),
            {"execution_id": "b", "status": "success", "started_at": "2026-11-21T08:00:00Z"},
            record("c", status="finished"),
            record("d", started_at="tuesday"),
            record("e", pid="12"),
            "not an object",
            record("f", parent_execution_id="a"),
        ]
        answer = client.post("/api/executions", json={"executions": batch})
        assert 200 == answer.status_code
        body = answer.json()
        assert 2 == body["stored"]
        assert [(1, "name"), (2, "status"), (3, "started_at"), (4, "pid"), (5, "")] == [
            (r["index"], r["field"]) for r in body["rejected"]
        ]
        assert all(r["error"] for r in body["rejected"])
        a = store.get("a")
        assert a is not None
        assert ({"x": 1}, {"team": "data"}, 3.5, "a", "manual") == (
            a.inputs,
            a.tags,
            a.duration_ms,
            a.correlation_id,
            a.trigger_kind,
        )
        f = store.get("f")
        assert f is not None
        assert "child" == f.trigger_kind

    def test_upsert_semantics(self, collector: tuple[httpx.Client, execlog.Store]) -> None:
        """running is completed in place; twice stores once; a late running never wins."""
        client, store = collector
        assert (
            1
            == client.post("/api/executions", json={"executions": [record("r", "running")]}).json()[
                "stored"
            ]
        )
        done = record(
            "r", "error", ended_at="2026-11-21T08:00:01Z", duration_ms=1000.0, error_message="boom"
        )
        assert 1 == client.post("/api/executions", json={"executions": [done]}).json()["stored"]
        client.post("/api/executions", json={"executions": [done]})
        late = client.post("/api/executions", json={"executions": [record("r", "running")]}).json()
        assert (0, []) == (late["stored"], late["rejected"])
        found = store.list(limit=10)
        assert [("r", "error", "boom")] == [
            (e.execution_id, e.status, e.error_message) for e in found
        ]

    def test_gzip_body(self, collector: tuple[httpx.Client, execlog.Store]) -> None:
        """Content-Encoding: gzip is accepted."""
        client, store = collector
        body = gzip.compress(
            b'{"executions": ['
            + b",".join(httpx.Request("GET", "/", json=record(f"g{i}")).content for i in range(3))
            + b"]}"
        )
        answer = client.post(
            "/api/executions",
            content=body,
            headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
        )
        assert 3 == answer.json()["stored"]
        assert 3 == len(store.list())

    def test_too_large_is_413(self, collector: tuple[httpx.Client, execlog.Store]) -> None:
        """Past the limit, raw or once decompressed (a gzip bomb), the answer is 413."""
        client, store = collector
        big = {"executions": [record("big", inputs="x" * 70_000)]}
        assert 413 == client.post("/api/executions", json=big).status_code
        bomb = gzip.compress(b'{"executions": [], "pad": "' + b" " * 5_000_000 + b'"}')
        assert len(bomb) < 64 * 1024
        answer = client.post(
            "/api/executions",
            content=bomb,
            headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
        )
        assert 413 == answer.status_code
        assert "detail" in answer.json()
        assert [] == store.list()

    def test_malformed_bodies(self, collector: tuple[httpx.Client, execlog.Store]) -> None:
        """Not JSON, or not of the batch's shape: 422; not declared JSON: 415."""
        client, _ = collector
        assert (
            422
            == client.post(
                "/api/executions", content=b"{", headers={"Content-Type": "application/json"}
            ).status_code
        )
        assert 422 == client.post("/api/executions", json=[record("x")]).status_code
        assert (
            415
            == client.post(
                "/api/executions", content=b"{}", headers={"Content-Type": "text/plain"}
            ).status_code
        )

    def test_token_required_for_post(self, collector: tuple[httpx.Client, execlog.Store]) -> None:
        """POST needs the token (401, no detail about why); reading on loopback does not."""
        client, _ = collector
        url = str(client.base_url)
        batch = {"executions": [record("x")]}
        assert 401 == httpx.post(url + "/api/executions", json=batch).status_code
        wrong = httpx.post(
            url + "/api/executions", json=batch, headers={"Authorization": "Bearer t0kem"}
        )
        assert 401 == wrong.status_code
        assert {"detail": "unauthorized"} == wrong.json()
        assert 200 == httpx.get(url + "/api/executions").status_code


class TestServeCommand:
    def test_serves_on_loopback_and_checks_the_host(self, quickstart_db: str) -> None:
        """`execlog serve` answers on 127.0.0.1 and refuses a Host that is not loopback."""
        with serving(quickstart_db) as url:
            assert 200 == httpx.get(url + "/api/stats").status_code
            assert 200 == httpx.get(url + "/", headers={"host": "localhost:1"}).status_code
            assert 400 == httpx.get(url + "/", headers={"host": "rebound.example"}).status_code

    def test_an_app_built_directly_takes_any_host(self, quickstart_db: str) -> None:
        """create_app() alone leaves the Host check to whoever serves it (tests, proxies)."""
        with execlog.open_store(quickstart_db) as store, live(create_app(store)) as url:
            assert 200 == httpx.get(url + "/api/stats", headers={"host": "testserver"}).status_code


class TestPublic:
    def test_everything_needs_the_token(self, tmp_path: Path) -> None:
        """Listening beyond loopback, every request needs the token; the viewer's cookie works."""
        store = execlog.open_store(str(tmp_path / "p.db"), create=True)
        with live(create_app(store, token="s3cret", public=True)) as url:
            assert 401 == httpx.get(url + "/api/executions").status_code
            assert 401 == httpx.get(url + "/").status_code
            headers = {"Authorization": "Bearer s3cret"}
            assert 200 == httpx.get(url + "/api/executions", headers=headers).status_code
            with httpx.Client(base_url=url) as browser:
                first = browser.get("/?token=s3cret")
                assert 303 == first.status_code
                assert "token" not in first.headers["location"]
                assert "httponly" in first.headers["set-cookie"].lower()
                assert 200 == browser.get("/api/executions").status_code
            elsewhere = httpx.get(url + "//evil.example/x?token=s3cret&a=1")
            assert (303, "/evil.example/x?a=1") == (
                elsewhere.status_code,
                elsewhere.headers["location"],
            )
        store.close()

    def test_public_without_token_refused(self, tmp_path: Path) -> None:
        """create_app refuses public=True without a token; so does `serve --host 0.0.0.0`."""
        store = execlog.open_store(str(tmp_path / "p.db"), create=True)
        with pytest.raises(ValueError, match="token"):
            create_app(store, public=True)
        store.close()
        env = {k: v for k, v in __import__("os").environ.items() if k != "EXECLOG_TOKEN"}
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "execlog",
                "serve",
                "--db",
                str(tmp_path / "p.db"),
                "--host",
                "0.0.0.0",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
            check=False,
        )
        assert 2 == done.returncode
        assert "without a token" in done.stderr


def test_import_execlog_leaves_the_server_out() -> None:
    """`import execlog` imports neither the server package nor its dependencies."""
    code = (
        "import sys, execlog; execlog.open_store(':memory:');"
        "bad = [m for m in ('execlog.server', 'fastapi', 'starlette', 'jinja2', 'uvicorn')"
        " if m in sys.modules]; sys.exit(str(bad) if bad else 0)"
    )
    assert 0 == subprocess.run([sys.executable, "-c", code], check=False).returncode
