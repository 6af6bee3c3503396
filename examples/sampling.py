"""Head sampling: record one request in ten, whole, and every failure with the path to it.

python examples/sampling.py
execlog stats
"""

from __future__ import annotations

import execlog


@execlog.traced_execution
def lookup(user: int) -> dict[str, int]:
    """A step of every request; it fails for one user in fifty."""
    if user % 50 == 7:
        raise LookupError(f"no profile for user {user}")
    return {"user": user, "score": user % 13}


@execlog.traced_execution
def render(profile: dict[str, int]) -> str:
    return f"user {profile['user']}: {profile['score']}"


@execlog.traced_execution(kind="request")
def handle(user: int) -> str:
    try:
        return render(lookup(user))
    except LookupError:
        return "not found"


@execlog.traced_execution(kind="job", sample_rate=1.0)  # its own rate: every nightly job
def nightly() -> int:
    return sum(lookup(user)["score"] for user in range(100, 103))


if __name__ == "__main__":
    # One request tree in ten is recorded whole; in the nine others, a failing lookup is
    # still recorded, with the request above it.
    execlog.configure(sample_rate=0.1, always_record_errors=True)
    for user in range(1_000):
        handle(user)
    nightly()
    execlog.flush()
    with execlog.open_store("execlog.db") as store:
        requests = store.list(name="handle", limit=1_000)
        failed = store.list(name="lookup", status="error", limit=1_000)
        print(f"requests recorded: {len(requests)} of 1000")
        print(f"failed lookups recorded: {len(failed)} of 20")
        # a recorded request has all its children: lookup, and render unless lookup failed
        whole = all(
            len(store.children(r.execution_id)) == (1 if r.output == "not found" else 2)
            for r in requests
        )
        print(f"every recorded request is whole: {whole}")
        print(f"nightly jobs recorded: {len(store.list(name='nightly'))}")
