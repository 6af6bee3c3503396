"""The OpenAPI document matches the behaviour: schemathesis against a running server."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

import execlog
from execlog.server import create_app
from server_support import live, record_quickstart

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    db = str(tmp_path_factory.mktemp("schema") / "quickstart.db")
    record_quickstart(db, runs=1)
    execlog.shutdown()
    store = execlog.open_store(db)
    with live(create_app(store)) as url:
        yield schemathesis.openapi.from_url(url + "/api/openapi.json")
    store.close()


def test_api_conforms(api_schema: Any) -> None:
    """For every operation: no server error, and every answer matches the documented schema."""
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 9
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=25,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        def conforms(case: Any) -> None:
            case.call_and_validate()

        conforms()
