"""Jobs for the acceptance tests. Each writes a ledger row keyed by (job id, attempt), so a test
can count exactly how often each job ran. Imported by real ``jobrunner work`` processes."""

from __future__ import annotations

import asyncio
import os
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, text

from jobqueue import current_job, durable_sleep, get_default_queue, iterate, job, step

LEDGER = "test_ledger"


def write_ledger(tag: str) -> int:
    """Insert this attempt's row; returns the attempt number."""
    current = current_job()
    assert current is not None
    with get_default_queue().transaction() as connection:
        connection.execute(
            text(
                f"INSERT INTO {LEDGER} (job_id, attempt, tag, pid, at) "
                "VALUES (:job_id, :attempt, :tag, :pid, :at)"
            ),
            {
                "job_id": current.id,
                "attempt": current.attempts,
                "tag": tag,
                "pid": os.getpid(),
                "at": datetime.now(UTC).isoformat(),
            },
        )
    return current.attempts


@job(name="ledger.record")
def record(tag: str = "") -> None:
    write_ledger(tag)


@job(name="ledger.debounced", debounce=timedelta(seconds=1), unique_key="ledger-debounce")
def debounced(tag: str = "") -> None:
    """Runs once per second of quiet, with the last enqueue's tag."""
    write_ledger(tag)


@job(name="ledger.record_async")
async def record_async(tag: str = "") -> None:
    await asyncio.sleep(0)
    write_ledger(tag)


@job(name="ledger.slow_first_attempt")
def slow_first_attempt(seconds: float) -> None:
    if write_ledger("slow") == 1:
        time.sleep(seconds)


@job(name="ledger.sleep")
def sleep(seconds: float) -> None:
    write_ledger("sleep")
    time.sleep(seconds)


@job(name="ledger.fail_twice", backoff=0.3)
def fail_twice() -> None:
    if write_ledger("flaky") <= 2:
        raise ConnectionError("transient trouble")


@job(name="ledger.sync_timeout", timeout=0.5, max_attempts=1)
def sync_timeout() -> None:
    write_ledger("sync_timeout")
    time.sleep(2)


@job(name="ledger.async_timeout", timeout=0.5, max_attempts=1)
async def async_timeout() -> None:
    write_ledger("async_timeout")
    await asyncio.sleep(30)


@job(name="ledger.cancellable")
def cancellable() -> None:
    """Works in small steps and stops when an operator cancels it."""
    from jobqueue import JobCancelled, cancel_requested

    write_ledger("cancellable")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if cancel_requested():
            raise JobCancelled("stopped at the operator's request")
        time.sleep(0.05)


@job(name="ledger.overruns", timeout=0.5, max_attempts=2, backoff=0)
def overruns() -> None:
    write_ledger("overruns")
    time.sleep(1.0)


@job(name="ledger.limited", concurrency_limit=2)
def limited(seconds: float) -> None:
    write_ledger("start")
    time.sleep(seconds)
    write_ledger("end")


@job(name="ledger.rated", rate_limit="20/s", rate_key="partner-api")
def rated() -> None:
    """Starts at most 20 times a second across every worker: the rate-limit test's unit."""


@job(
    name="ledger.tenant_nap",
    concurrency_limit=10_000,
    concurrency_key=lambda tenant, seconds: f"tenant:{tenant}",
)
def tenant_nap(tenant: str, seconds: float) -> None:
    """A tenant's unit of work: the fairness test's keys."""
    time.sleep(seconds)


@job(name="ledger.nap")
def nap(seconds: float) -> None:
    """Records the attempt, then sleeps: the chaos tests' unit of work."""
    write_ledger("nap")
    time.sleep(seconds)


@job(name="ledger.doze", queue="other")
def doze(seconds: float) -> None:
    """Only sleeps (no ledger row): steady work whose pace the database barely touches."""
    time.sleep(seconds)


@job(name="ledger.spin")
def spin(seconds: float) -> None:
    """CPU-bound: pure Python, holding the GIL as much as Python code can."""
    write_ledger("spin")
    deadline = time.monotonic() + seconds
    total = 0
    while time.monotonic() < deadline:
        for i in range(10_000):
            total += i * i


@job(name="ledger.interrupt", max_attempts=1)
def interrupt() -> None:
    raise KeyboardInterrupt


@job(name="ledger.hard_exit", max_attempts=2)
def hard_exit() -> None:
    write_ledger("hard_exit")
    os._exit(3)


def _start_on_record() -> str:
    """'recorded' if the database already knows this attempt started, else 'unrecorded'."""
    current = current_job()
    assert current is not None
    with get_default_queue().transaction(read_only=True) as connection:
        started = connection.execute(
            text("SELECT started_attempt FROM job_queue WHERE id = :id"), {"id": current.id}
        ).scalar()
    return "recorded" if started == current.attempts else "unrecorded"


@job(name="ledger.report_start")
def report_start() -> None:
    write_ledger(_start_on_record())


@job(name="ledger.report_start_async")
async def report_start_async() -> None:
    write_ledger(_start_on_record())


@job(name="ledger.wait_for_file")
def wait_for_file(path: str) -> None:
    """Start (ledger row), then finish only once ``path`` exists: a test decides when this
    job's completion is written. Gives up after 60 s, failing the attempt."""
    write_ledger("waiting")
    deadline = time.monotonic() + 60
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} never appeared")
        time.sleep(0.01)


@job(name="ledger.compute")
def compute(n: int) -> dict[str, object]:
    write_ledger("compute")
    return {"n": n, "total": sum(range(n))}


def _step_body(number: int, hold: str | None, seconds: float) -> int:
    """Step ``number`` of :func:`five_steps`: a ledger row per execution; on the job's first
    attempt, step 3 waits for the file ``hold`` (a test kills the worker meanwhile) and step 2
    takes ``seconds``."""
    write_ledger(f"step-{number}")
    current = current_job()
    assert current is not None
    if number == 2:
        time.sleep(seconds)  # a slow step, so that a stop arrives while it runs
    if number == 3 and hold and current.attempts == 1:
        deadline = time.monotonic() + 60
        while not os.path.exists(hold) and time.monotonic() < deadline:
            time.sleep(0.01)
    return number


@job(name="ledger.five_steps")
def five_steps(hold: str | None = None, slow_step_seconds: float = 0.0) -> dict[str, int]:
    from jobqueue import step

    total = 0
    for number in range(1, 6):
        total += step(f"step-{number}", _step_body, number, hold, slow_step_seconds)
    return {"total": total}


# Durable steps under kills and sleeps (tests/acceptance/test_steps_durability.py). ``walk``
# and ``place_order`` note what they do in a file, one ``os.write`` per line: a SIGKILL cannot tear
# or lose a write that returned, so a test sees exactly what each attempt did, at no database
# cost per item.

ORDERS = "durable_orders"


def note(path: str, line: str) -> None:
    """Append one line to ``path`` in a single write."""
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(descriptor, f"{line}\n".encode())
    finally:
        os.close(descriptor)


def _attempt() -> int:
    current = current_job()
    assert current is not None
    return current.attempts


@job(name="durable.walk")
def walk(notes: str, count: int, every: int, pace: float) -> None:
    """Handle ``range(count)`` through ``iterate``, noting ``attempt item pid`` per item and
    taking ``pace`` seconds over each, so a test can kill the worker mid-way."""
    attempt, pid = _attempt(), os.getpid()
    descriptor = os.open(notes, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        for item in iterate(
            "items",
            lambda cursor: range(0 if cursor is None else cursor + 1, count),
            key=lambda i: i,
            every=every,
        ):
            time.sleep(pace)
            os.write(descriptor, f"{attempt} {item} {pid}\n".encode())
    finally:
        os.close(descriptor)


def _insert_order(connection: Connection, notes: str, order_id: int) -> int:
    attempt = _attempt()
    note(notes, f"insert {attempt}")  # each execution of the step's function, kept or not
    connection.execute(
        text(f"INSERT INTO {ORDERS} (order_id, attempt) VALUES (:order_id, :attempt)"),
        {"order_id": order_id, "attempt": attempt},
    )
    return order_id


@job(name="durable.place_order")
def place_order(notes: str, order_id: int) -> int:
    """A transactional step: the order row commits with the step's record."""
    placed = step("insert-order", _insert_order, notes, order_id, transaction=True)
    note(notes, f"after {_attempt()}")
    return placed


@job(name="durable.nap")
def durable_nap(seconds: float) -> str:
    """A ledger row in a step, a durable sleep, then another ledger row in a step."""
    step("before", write_ledger, "before")
    durable_sleep("nap", timedelta(seconds=seconds))
    step("after", write_ledger, "after")
    return "rested"
