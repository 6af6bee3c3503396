"""A small nightly-report workflow recorded by execlog into ./execlog.db.

Run it, then explore what it recorded:

    python examples/quickstart.py
    execlog list
    execlog tree --last
"""

from __future__ import annotations

import asyncio
import os
import random

import execlog
from execlog.cli import main as execlog_cli

API_TOKEN = os.environ.get("REPORTS_API_TOKEN", "dev-token-123")
REGIONS = ["eu-west", "eu-north", "us-east", "us-west", "ap-south"]


class PublishError(RuntimeError):
    """The report service rejected the upload."""


@execlog.traced_execution(kind="io")
async def fetch_region(region: str, day: str) -> dict[str, object]:
    """Pretend to download one region's sales for a day."""
    await asyncio.sleep(random.uniform(0.01, 0.05))
    return {"region": region, "day": day, "sales": random.randint(100, 1000)}


@execlog.traced_execution(kind="io")
async def fetch_all(day: str) -> list[dict[str, object]]:
    """Fan out: fetch every region at once."""
    return list(await asyncio.gather(*(fetch_region(r, day) for r in REGIONS)))


@execlog.traced_execution
def validate(rows: list[dict[str, object]]) -> int:
    """Drop rows without sales."""
    good = [r for r in rows if r["sales"]]
    execlog.current_execution().tag(dropped=len(rows) - len(good))  # type: ignore[union-attr]
    return len(good)


@execlog.traced_execution
def summarise(rows: list[dict[str, object]]) -> dict[str, object]:
    """Total the sales, best region first."""
    ranked = sorted(rows, key=lambda r: r["sales"], reverse=True)  # type: ignore[arg-type,return-value]
    return {"total": sum(r["sales"] for r in rows), "best": ranked[0]["region"]}  # type: ignore[misc]


@execlog.traced_execution(kind="io")
def publish(report: dict[str, object], api_token: str, attempt: int) -> str:
    """Upload the report; the first attempt hits a transient failure.

    ``api_token`` is stored as "[REDACTED]": secret-looking names never reach the database.
    """
    if not api_token or attempt == 1:
        msg = "503 Service Unavailable from reports.example.internal"
        raise PublishError(msg)
    return f"report-{report['total']}"


def nightly_report(day: str) -> str:
    """The workflow: fetch, validate, summarise, publish (with one retry)."""
    with execlog.execution(
        "nightly-report", kind="workflow", inputs={"day": day}, trigger_kind="scheduled"
    ) as run:
        rows = asyncio.run(fetch_all(day))
        validate(rows)
        report = summarise(rows)
        try:
            with execlog.execution("publish-attempt", inputs={"attempt": 1}) as first:
                url = publish(report, api_token=API_TOKEN, attempt=1)
        except PublishError:
            # The retry records the failed attempt as its parent: "which retry came from
            # which failure" is a query, not a guess.
            with execlog.execution(
                "publish-attempt", inputs={"attempt": 2}, parent=first, trigger_kind="retry"
            ):
                url = publish(report, api_token=API_TOKEN, attempt=2)
        run.set_output({"url": url, **report})
        return run.execution_id


if __name__ == "__main__":
    root_id = nightly_report("2026-11-21")
    execlog.flush()
    print("Recorded into ./execlog.db; the run's execution tree:\n")
    raise SystemExit(execlog_cli(["tree", root_id]))
