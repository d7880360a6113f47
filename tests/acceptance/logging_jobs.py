"""Jobs for test_logging.py. A job logs through structlog as a host's job would, saying how its
worker process was started; the others fail, so their events carry a traceback."""

from __future__ import annotations

import sys

import structlog

from jobqueue import job

log = structlog.get_logger("logging_jobs")


def how_started() -> str:
    """``fresh`` in a ``python -m jobqueue.runtime.spawn`` worker, ``forked`` in a forked one."""
    spec = getattr(sys.modules["__main__"], "__spec__", None)
    return "fresh" if spec is not None and spec.name == "jobqueue.runtime.spawn" else "forked"


@job(name="logging_jobs.greet")
def greet() -> None:
    log.info("host_job_line", started=how_started())


@job(name="logging_jobs.boom", max_attempts=1)
def boom() -> None:
    raise ValueError("boom from the job")


@job(name="logging_jobs.flaky", max_attempts=2)
def flaky() -> None:
    raise KeyError("flaky the first time")
