"""Jobs the browser tests' real ``jobrunner work`` processes run (``--app dash_jobs``)."""

from __future__ import annotations

from jobqueue import current_job, job


@job(name="dash.flaky", max_attempts=1)
def flaky(note: str = "") -> None:
    """Fails its first attempt for good (max_attempts=1), so only an operator's retry runs it
    again; ``attempts`` is never reset, so that second run succeeds."""
    current = current_job()
    assert current is not None
    if current.attempts == 1:
        raise RuntimeError(f"first attempt fails ({note})")


@job(name="dash.fine")
def fine(note: str = "") -> None:
    """Succeeds, to give the overview's chart some throughput."""
