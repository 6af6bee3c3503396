"""The JSON API's shapes, described once for the OpenAPI document.

Routes answer with plain data from the public dataclasses' ``to_dict()`` (encoded by orjson);
these models only document those shapes. ``tests/test_server_api.py`` runs schemathesis to
check that the answers match them.
"""

from __future__ import annotations

import datetime as dt  # noqa: TC003 - pydantic resolves the annotations at run time
from typing import Any

import orjson
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

__all__ = [
    "Correlation",
    "ErrorModel",
    "ExecutionList",
    "ExecutionModel",
    "Histogram",
    "HistogramLine",
    "IngestBody",
    "IngestResult",
    "JSONAnswer",
    "LineageModel",
    "Rejection",
    "RunList",
    "RunModel",
    "StatsModel",
    "TreeNode",
]


class ExecutionModel(BaseModel):
    """One execution (``Execution.to_dict()``); times are ISO 8601 UTC."""

    execution_id: str
    name: str
    kind: str
    status: str
    started_at: dt.datetime
    ended_at: dt.datetime | None
    duration_ms: float | None
    inputs: Any
    output: Any
    error_type: str | None
    error_message: str | None
    error_stack: str | None
    parent_execution_id: str | None
    correlation_id: str
    trigger_kind: str
    run_id: str | None
    tags: Any
    pid: int
    thread_id: int
    host: str


class ExecutionList(BaseModel):
    """A page of executions, newest first."""

    executions: list[ExecutionModel]
    limit: int
    offset: int
    has_more: bool


class LineageModel(BaseModel):
    """An execution with its ancestors (root first), descendants (breadth first), siblings."""

    execution: ExecutionModel
    ancestors: list[ExecutionModel]
    descendants: list[ExecutionModel]
    siblings: list[ExecutionModel]


class TreeNode(ExecutionModel):
    """An execution with its children, recursively, by start time."""

    children: list[TreeNode]


class Correlation(BaseModel):
    """Every execution of one correlation, by start time."""

    correlation_id: str
    total_executions: int
    root_execution_id: str | None
    executions: list[ExecutionModel]


class StatsModel(BaseModel):
    """Outcomes and durations of the finished executions of one name."""

    name: str
    count: int
    errors: int
    error_rate: float
    p50_ms: float | None
    p95_ms: float | None
    max_ms: float | None


class RunModel(ExecutionModel):
    """A root execution with the counts of its correlation tree."""

    executions: int
    errors: int
    running: int


class RunList(BaseModel):
    """A page of runs (root executions), newest first."""

    runs: list[RunModel]
    limit: int
    offset: int
    has_more: bool


class HistogramLine(BaseModel):
    """Finished executions of one name per duration bucket."""

    name: str
    counts: list[int]


class Histogram(BaseModel):
    """Duration histograms; bucket i counts durations below ``bounds_ms[i]`` (the last: above)."""

    bounds_ms: list[float]
    names: list[HistogramLine]


class IdMatches(BaseModel):
    """The ids an id prefix names (none, one, or the first ten of several)."""

    ids: list[str]
    more: bool


class IngestBody(BaseModel):
    """A batch of executions (execution_id, name, status, started_at) and events to store.

    An event needs execution_id, at, level and message.
    """

    executions: list[dict[str, Any]]
    events: list[dict[str, Any]] = Field(default_factory=list)


class Rejection(BaseModel):
    """Why one record of a batch was not stored."""

    index: int
    field: str
    error: str


class IngestResult(BaseModel):
    """How many records were stored, and which were rejected."""

    stored: int
    rejected: list[Rejection] = Field(default_factory=list)
    events_stored: int = 0
    events_rejected: list[Rejection] = Field(default_factory=list)


class ErrorModel(BaseModel):
    """An error: ``{"detail": "..."}``."""

    detail: str


class JSONAnswer(JSONResponse):
    """JSON encoded by orjson; routes return it directly (the models above only document)."""

    def render(self, content: Any) -> bytes:
        """Encode ``content``."""
        return orjson.dumps(content)
