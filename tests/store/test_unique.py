"""Unique jobs: one pending-or-running job per key, enforced by the database on every backend."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import textwrap

from sqlalchemy import func, select

from jobqueue import JobQueue, by_name, job
from jobqueue.schema import job_queue
from jobqueue.testing import drain


@job(name="unique.report", unique=True)
def report(day: str, *, full: bool = False) -> None: ...


@job(name="unique.flaky", unique=True, max_attempts=1)
def flaky(n: int) -> None:
    raise RuntimeError("no")


def rows_with_key(jq: JobQueue, key: str) -> int:
    digest = hashlib.sha256(key.encode()).hexdigest()
    with jq.transaction(read_only=True) as connection:
        query = select(func.count()).where(job_queue.c.unique_key == digest)
        return int(connection.execute(query).scalar_one())


def test_same_name_and_arguments_return_the_queued_job(jq: JobQueue) -> None:
    first = report.enqueue("2027-01-01")
    again = report.enqueue("2027-01-01")
    other = report.enqueue("2027-01-01", full=True)
    assert (again.id, again.existing, first.existing) == (first.id, True, False)
    assert other.id != first.id
    assert jq.count_jobs() == 2


def test_the_key_is_free_again_once_the_job_finishes(jq: JobQueue) -> None:
    first = report.enqueue("d")
    drain(jq)
    second = report.enqueue("d")
    assert second.id != first.id and not second.existing
    failed = flaky.enqueue(1)
    drain(jq)
    assert flaky.enqueue(1).id != failed.id


def test_explicit_keys_and_duplicates_within_one_batch(jq: JobQueue) -> None:
    charge = by_name("billing.charge")
    a = charge.using(unique_key="invoice-7").enqueue(7)
    b = charge.using(unique_key="invoice-7").enqueue(8)
    assert b.id == a.id and b.existing
    handles = jq.enqueue_many(
        [
            charge.using(unique_key="k2").call(1),
            charge.using(unique_key="k2").call(2),
            charge.call(3),
        ]
    )
    assert handles[1].id == handles[0].id and handles[1].existing
    assert rows_with_key(jq, "k2") == 1 and rows_with_key(jq, "invoice-7") == 1
    assert jq.count_jobs() == 3


def test_a_duplicate_does_not_abort_the_callers_transaction(jq: JobQueue) -> None:
    with jq.engine.connect() as connection, connection.begin():
        first = report.using(connection=connection).enqueue("x")
        again = report.using(connection=connection).enqueue("x")
        later = report.using(connection=connection).enqueue("y")  # still usable afterwards
    assert again.id == first.id
    assert {jq.get_job(first.id).name, jq.get_job(later.id).name} == {"unique.report"}  # type: ignore[union-attr]


def test_concurrent_enqueuers_in_several_processes_create_one_job(jq: JobQueue) -> None:
    script = textwrap.dedent(
        """
        import sys, time
        from jobqueue import JobQueue, by_name
        jq = JobQueue(sys.argv[1])
        start = float(sys.argv[2])
        while time.time() < start:
            time.sleep(0.001)
        ids = {by_name("race.job").using(unique_key="the-key", jobqueue=jq).enqueue(i).id
               for i in range(25)}
        print(" ".join(sorted(ids)))
        """
    )
    import time

    start = str(time.time() + 2.0)
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", script, jq.database_url, start],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    outputs = [racer.communicate(timeout=120) for racer in racers]
    assert all(racer.returncode == 0 for racer in racers), [err for _, err in outputs]
    ids = {job_id for out, _ in outputs for job_id in out.split()}
    assert len(ids) == 1
    assert rows_with_key(jq, "the-key") == 1
