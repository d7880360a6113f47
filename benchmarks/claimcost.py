"""The cost of the claim as the table grows, measured at the store level.

The worker's own functions are called in a loop on one connection, the way the worker's loop
does: each transaction completes the previous batch (:func:`jobqueue.attempts.complete_jobs`)
and claims the next (:func:`jobqueue.store.claims.claim_jobs`, ``limit`` = ``--claim-batch``, 10 by
default: what a worker with 5 threads claims once its jobs take 50 ms or more, when its
automatic prefetch is at its minimum of 5; tiny jobs make it claim hundreds at a time, which
would hide a claim's own cost). It runs on (a) a table holding only the due jobs
and (b) one that also holds a million succeeded rows and a hundred thousand future-scheduled
ones, which is what a busy queue looks like between prunes. A claim whose cost follows the
table size instead of the batch size shows up as a ratio b/a well above 1.

The filler rows are written with one ``INSERT ... SELECT`` per 100,000 rows from a generated
sequence (generate_series, a recursive CTE, or a cross join of digits on MySQL/MariaDB, whose
recursion depth is capped at 1,000 by default), so filling a million rows takes seconds, not
a million round trips.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, bindparam, event, text

from benchmarks.bench_jobs import noop
from benchmarks.databases import analyze
from benchmarks.procs import BenchmarkError
from benchmarks.results import percentile
from jobqueue import JobQueue
from jobqueue.runtime import lifecycle
from jobqueue.schema import SUCCEEDED, UTCDateTime
from jobqueue.store import attempts, claims

FILLER_NAME = "bench.filler"
CHUNK = 100_000
PROCESS_ID = "0BENCHCLAIMPROCESS00000000"


@dataclass
class ClaimRun:
    """One pass over the due jobs: per-claim seconds, and the whole loop's wall clock."""

    claim_seconds: list[float]
    complete_seconds: list[float]
    total_seconds: float
    jobs: int

    @property
    def median_claim_ms(self) -> float:
        return statistics.median(self.claim_seconds) * 1000

    @property
    def p99_claim_ms(self) -> float:
        return percentile(self.claim_seconds, 0.99) * 1000

    @property
    def median_complete_ms(self) -> float:
        return statistics.median(self.complete_seconds or [0.0]) * 1000

    @property
    def jobs_per_second(self) -> float:
        return self.jobs / self.total_seconds


def _sequence_sql(dialect: str, count: int) -> str:
    """A ``FROM``-able set of integers 1..count, column ``n``."""
    if dialect == "postgresql":
        return f"generate_series(1, {count}) AS seq(n)"
    if dialect == "sqlite":
        return (
            f"(WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq "
            f"WHERE n < {count}) SELECT n FROM seq) AS seq"
        )
    digits = " UNION ALL ".join(f"SELECT {d} AS d" for d in range(10))
    places = max(1, len(str(count - 1)))
    joined = ", ".join(f"({digits}) AS p{i}" for i in range(places))
    number = " + ".join(f"p{i}.d * {10**i}" for i in range(places))
    return f"(SELECT {number} + 1 AS n FROM {joined}) AS seq"


def _id_sql(dialect: str, prefix: str) -> str:
    """A 26-character id: ``prefix`` and the zero-padded sequence number (sorts before any
    ULID of this century, as old rows' ids would)."""
    width = 26 - len(prefix)
    if dialect == "postgresql":
        return f"'{prefix}' || lpad(CAST(:offset + n AS text), {width}, '0')"
    if dialect == "sqlite":
        return f"'{prefix}' || printf('%0{width}d', :offset + n)"
    return f"CONCAT('{prefix}', LPAD(:offset + n, {width}, '0'))"


def fill(connection: Connection, *, count: int, status: str, prefix: str, when: datetime) -> None:
    """Insert ``count`` filler rows of ``status`` (succeeded: finished at ``when``; pending:
    scheduled for ``when``) in chunks of :data:`CHUNK`, each one INSERT ... SELECT."""
    dialect = connection.dialect.name
    finished = status == SUCCEEDED
    for offset in range(0, count, CHUNK):
        size = min(CHUNK, count - offset)
        statement = text(
            "INSERT INTO job_queue (id, name, args, queue, priority, status, scheduled_for, "
            "attempts, failed_attempts, max_attempts, created_at, started_at, finished_at, "
            f"claimed_by) SELECT {_id_sql(dialect, prefix)}, :name, :args, 'default', 0, "
            f":status, :when, {1 if finished else 0}, 0, 25, :created, "
            f"{':when' if finished else 'NULL'}, {':when' if finished else 'NULL'}, "
            f"{':claimer' if finished else 'NULL'} FROM {_sequence_sql(dialect, size)}"
        ).bindparams(
            bindparam("when", type_=UTCDateTime()), bindparam("created", type_=UTCDateTime())
        )
        with connection.begin():
            connection.execute(
                statement,
                {
                    "offset": offset,
                    "name": FILLER_NAME,
                    "args": '{"args": [], "kwargs": {}}',
                    "status": status,
                    "when": when,
                    "created": when - timedelta(days=1) if finished else datetime.now(UTC),
                    "claimer": "0BENCHOLDWORKER00000000000",
                },
            )


def build_table(jobqueue: JobQueue, finished_rows: int) -> None:
    """The big table: ``finished_rows`` succeeded rows and a tenth as many future ones."""
    now = datetime.now(UTC)
    with jobqueue.connect() as connection:
        fill(
            connection,
            count=finished_rows,
            status=SUCCEEDED,
            prefix="0S",
            when=now - timedelta(hours=2),
        )
        fill(
            connection,
            count=finished_rows // 10,
            status="pending",
            prefix="0F",
            when=now + timedelta(days=1),
        )


def enqueue_due(jobqueue: JobQueue, count: int) -> None:
    for offset in range(0, count, 1000):
        jobqueue.enqueue_many([noop.call() for _ in range(min(1000, count - offset))])


def claim_all(jobqueue: JobQueue, batch: int) -> ClaimRun:
    """Claim and complete every due job on one connection, the way the worker loop does."""
    claim_seconds: list[float] = []
    complete_seconds: list[float] = []
    jobs = 0
    fences: list[tuple[str, int]] = []
    with jobqueue.connect() as connection:
        started = time.perf_counter()
        while True:
            with connection.begin():
                now = datetime.now(UTC)
                if fences:
                    before = time.perf_counter()
                    done = attempts.complete_jobs(
                        connection, process_id=PROCESS_ID, fences=fences, now=now
                    )
                    complete_seconds.append(time.perf_counter() - before)
                    if len(done) != len(fences):
                        raise BenchmarkError(f"{len(fences) - len(done)} completions were lost")
                before = time.perf_counter()
                claimed = claims.claim_jobs(
                    connection, process_id=PROCESS_ID, queues=None, limit=batch, now=now
                )
                claim_seconds.append(time.perf_counter() - before)
            jobs += len(claimed)
            fences = [job.fence for job in claimed]
            if not claimed:
                break
        total = time.perf_counter() - started
    # The last claim found nothing: it is the idle case, not a claim of a batch.
    return ClaimRun(claim_seconds[:-1] or claim_seconds, complete_seconds, total, jobs)


def register(jobqueue: JobQueue) -> None:
    """The claim only hands jobs to a registered process."""
    with jobqueue.transaction() as connection:
        lifecycle.register(connection, process_id=PROCESS_ID, kind="worker")


def remove_due(jobqueue: JobQueue) -> None:
    """Delete the claimed jobs again, so every run starts from the same table."""
    with jobqueue.transaction() as connection:
        connection.execute(text("DELETE FROM job_queue WHERE name = :name"), {"name": noop.name})


def measure(jobqueue: JobQueue, due: int, batch: int) -> ClaimRun:
    """One run: enqueue the due jobs, gather statistics (see :func:`databases.analyze`),
    claim and complete them all, check, and delete them again."""
    enqueue_due(jobqueue, due)
    analyze(jobqueue.engine)
    run = claim_all(jobqueue, batch)
    if run.jobs != due:
        raise BenchmarkError(f"claimed {run.jobs} of {due} due jobs")
    if jobqueue.count_jobs(status=SUCCEEDED) - _filler_succeeded(jobqueue) != due:
        raise BenchmarkError("not every claimed job ended succeeded")
    remove_due(jobqueue)
    return run


def _filler_succeeded(jobqueue: JobQueue) -> int:
    with jobqueue.transaction(read_only=True) as connection:
        return int(
            connection.execute(
                text("SELECT COUNT(*) FROM job_queue WHERE name = :name AND status = 'succeeded'"),
                {"name": FILLER_NAME},
            ).scalar_one()
        )


@contextmanager
def _captured(connection: Connection) -> Iterator[list[tuple[str, Any]]]:
    """The statements (and driver parameters) sent on ``connection`` inside the block."""
    sent: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        sent.append((statement, parameters))

    event.listen(connection, "before_cursor_execute", capture)
    try:
        yield sent
    finally:
        event.remove(connection, "before_cursor_execute", capture)


def explain_claim(jobqueue: JobQueue, due: int, batch: int) -> str:
    """The query plan of the claim statement(s) exactly as the worker sends them, with ``due``
    due jobs in the table: one claim is run in a transaction that is rolled back, and each
    statement it sent is explained (EXPLAIN QUERY PLAN on SQLite, EXPLAIN on MariaDB/MySQL;
    EXPLAIN ANALYZE on PostgreSQL, which adds the rows each step actually read)."""
    enqueue_due(jobqueue, due)
    analyze(jobqueue.engine)
    dialect = jobqueue.dialect
    prefix = {"sqlite": "EXPLAIN QUERY PLAN ", "postgresql": "EXPLAIN ANALYZE "}.get(
        dialect, "EXPLAIN "
    )
    lines: list[str] = []
    with jobqueue.connect() as connection:
        transaction = connection.begin()
        try:
            with _captured(connection) as sent:
                claims.claim_jobs(
                    connection,
                    process_id=PROCESS_ID,
                    queues=None,
                    limit=batch,
                    now=datetime.now(UTC),
                )
            for statement, parameters in sent:
                lines.append("-- " + " ".join(statement.split()))
                rows = connection.exec_driver_sql(prefix + statement, parameters).all()
                lines.extend(_plan_lines(dialect, rows))
                lines.append("")
        finally:
            transaction.rollback()
    remove_due(jobqueue)
    return "\n".join(lines).rstrip()


def _plan_lines(dialect: str, rows: Sequence[Any]) -> list[str]:
    if dialect == "sqlite":
        # (id, parent, notused, detail): indent by nesting depth.
        depth: dict[int, int] = {0: 0}
        out = []
        for row in rows:
            depth[row[0]] = depth.get(row[1], 0) + 1
            out.append("  " * (depth[row[0]] - 1) + str(row[3]))
        return out
    if dialect == "postgresql":
        return [str(row[0]) for row in rows]
    header = "id | select_type | table | type | possible_keys | key | key_len | ref | rows | Extra"
    return [header] + [" | ".join("" if v is None else str(v) for v in row) for row in rows]
