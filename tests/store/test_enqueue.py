"""Enqueue conformance: the same tests on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import event, text
from sqlalchemy.orm import Session

from jobqueue import (
    DatabaseUnavailableError,
    Job,
    JobCall,
    JobQueue,
    NaiveDatetimeError,
    PayloadTooLargeError,
    SchemaError,
    SerializationError,
    job,
)
from jobqueue.testing._proxy import CuttableProxy

from backends import PGBOUNCER, TestDatabase, scale_factor

# Also through PgBouncer in transaction mode (tests/backends.py).
pytestmark = pytest.mark.pgbouncer


@job(name="tests.send_welcome", queue="mail", max_attempts=8)
def send_welcome(user_id: int, *, greeting: str = "hi") -> None: ...


class Resize(Job, name="tests.Resize", queue="images", priority=4):
    def perform(self, path: str) -> None: ...


def test_enqueue_writes_a_pending_row(jq: JobQueue) -> None:
    before = datetime.now(UTC)
    handle = send_welcome.enqueue(42, greeting="hello")
    row = jq.get_job(handle.id)
    assert row is not None
    assert len(handle.id) == 26
    assert (row.name, row.queue, row.status, row.priority) == (
        "tests.send_welcome",
        "mail",
        "pending",
        0,
    )
    assert (row.args, row.kwargs) == ([42], {"greeting": "hello"})
    assert (row.attempts, row.failed_attempts, row.max_attempts) == (0, 0, 8)
    assert row.claimed_by is None and row.started_at is None and row.finished_at is None
    assert before <= row.scheduled_for <= datetime.now(UTC)
    assert row.scheduled_for.tzinfo is UTC


def test_ids_are_time_ordered(jq: JobQueue) -> None:
    ids = [send_welcome.enqueue(i).id for i in range(20)]
    assert ids == sorted(ids)


def test_enqueue_in_and_at_schedule_for_later_with_microseconds(jq: JobQueue) -> None:
    later = send_welcome.enqueue_in(timedelta(minutes=10), 1)
    row = jq.get_job(later.id)
    assert row is not None
    assert timedelta(minutes=9) < row.scheduled_for - datetime.now(UTC) <= timedelta(minutes=10)
    when = datetime(2027, 1, 1, 9, 30, 15, 123456, tzinfo=timezone(timedelta(hours=2)))
    at = send_welcome.enqueue_at(when, 2)
    row = jq.get_job(at.id)
    assert row is not None
    assert row.scheduled_for == when
    assert row.scheduled_for.tzinfo is UTC and row.scheduled_for.hour == 7
    assert row.scheduled_for.microsecond == 123456


def test_naive_datetime_is_refused_and_nothing_written(jq: JobQueue) -> None:
    with pytest.raises(NaiveDatetimeError, match="no timezone"):
        send_welcome.enqueue_at(datetime(2027, 1, 1), 1)
    with pytest.raises(TypeError):
        send_welcome.enqueue_in(5, 1)  # type: ignore[arg-type]
    assert jq.count_jobs() == 0


def test_using_overrides_queue_priority_and_attempts(jq: JobQueue) -> None:
    handle = send_welcome.using(queue="urgent", priority=-5, max_attempts=2).enqueue(1)
    row = jq.get_job(handle.id)
    assert row is not None
    assert (row.queue, row.priority, row.max_attempts) == ("urgent", -5, 2)


def test_class_jobs_enqueue_with_their_options(jq: JobQueue) -> None:
    row = jq.get_job(Resize.enqueue("a.png").id)
    assert row is not None
    assert (row.name, row.queue, row.priority, row.args) == ("tests.Resize", "images", 4, ["a.png"])


def test_enqueue_by_name_needs_no_import_of_the_job(jq: JobQueue) -> None:
    handle = jq.enqueue("billing.charge", 42, currency="EUR")
    row = jq.get_job(handle.id)
    assert row is not None
    assert (row.name, row.queue, row.args, row.kwargs) == (
        "billing.charge",
        "default",
        [42],
        {"currency": "EUR"},
    )


@pytest.mark.parametrize("bad", [{1, 2}, b"bytes", object(), float("nan"), {1: "a"}])
def test_non_json_arguments_raise_type_error_and_write_nothing(jq: JobQueue, bad: object) -> None:
    with pytest.raises(SerializationError):
        send_welcome.enqueue(bad)  # type: ignore[arg-type]
    assert jq.count_jobs() == 0


def test_oversized_arguments_are_refused(backend: TestDatabase) -> None:
    with JobQueue(backend.url, max_payload_bytes=10_000) as small:
        with pytest.raises(PayloadTooLargeError):
            small.enqueue(send_welcome, "x" * 20_000)
        assert small.count_jobs() == 0


def test_an_oversized_call_inside_a_batch_writes_none_of_it(backend: TestDatabase) -> None:
    """A plain batch (PostgreSQL's COPY, the driver's executemany elsewhere) is all or
    nothing: one call refused half-way leaves none of the batch behind, and the queue writes
    the next batch as ever."""
    with JobQueue(backend.url, max_payload_bytes=10_000) as small:
        calls = [send_welcome.call(n) for n in range(600)]
        calls[400] = send_welcome.call(1, greeting="x" * 20_000)
        with pytest.raises(PayloadTooLargeError):
            small.enqueue_many(calls)
        assert small.count_jobs() == 0
        handles = small.enqueue_many([send_welcome.call(n) for n in range(600)])
        assert small.count_jobs() == 600
        assert len({handle.id for handle in handles}) == 600


def test_large_arguments_below_the_limit_round_trip(jq: JobQueue) -> None:
    # Over 64 KiB: MySQL's TEXT would truncate or refuse it; the column is LONGTEXT.
    payload = "é" * 200_000
    row = jq.get_job(send_welcome.enqueue(payload).id)
    assert row is not None and row.args == [payload]


def test_enqueue_many_writes_50000_jobs_in_one_transaction(jq: JobQueue) -> None:
    count = max(1000, int(50_000 * min(scale_factor(), 1.0)))
    calls = [send_welcome.call(i) for i in range(count)]
    handles = jq.enqueue_many(calls)
    assert len({h.id for h in handles}) == count
    assert jq.count_jobs(status="pending", queue="mail") == count
    first, last = jq.get_job(handles[0].id), jq.get_job(handles[-1].id)
    assert first is not None and first.args == [0]
    assert last is not None and last.args == [count - 1]


def test_enqueue_many_is_all_or_nothing(jq: JobQueue) -> None:
    calls = [send_welcome.call(1), send_welcome.call({1, 2}), send_welcome.call(3)]  # type: ignore[arg-type]
    with pytest.raises(SerializationError, match="set"):
        jq.enqueue_many(calls)
    assert jq.count_jobs() == 0


def test_enqueue_many_mixes_jobs_queues_and_times(jq: JobQueue) -> None:
    when = datetime.now(UTC) + timedelta(hours=1)
    elsewhere = datetime(2027, 1, 1, 9, 30, 15, 123456, tzinfo=timezone(timedelta(hours=-7)))
    handles = jq.enqueue_many(
        [
            send_welcome.call(1),
            Resize.using(queue="big").call("b.png"),
            JobCall("remote.task", args=(1,), queue="remote", scheduled_for=when),
            JobCall("remote.task", args=(2,), queue="remote", scheduled_for=elsewhere),
        ]
    )
    rows = {h.id: jq.get_job(h.id) for h in handles}
    queues = [rows[h.id].queue for h in handles]  # type: ignore[union-attr]
    assert queues == ["mail", "big", "remote", "remote"]
    assert rows[handles[2].id].scheduled_for == when  # type: ignore[union-attr]
    # Another zone, to the microsecond: stored as the same instant (PostgreSQL's binary COPY).
    assert rows[handles[3].id].scheduled_for == elsewhere  # type: ignore[union-attr]
    assert rows[handles[3].id].scheduled_for.microsecond == 123456  # type: ignore[union-attr]


def test_transactional_enqueue_with_a_connection(jq: JobQueue) -> None:
    with jq.engine.connect() as connection:
        with connection.begin() as transaction:
            rolled_back = send_welcome.using(connection=connection).enqueue(1)
            transaction.rollback()
        with connection.begin():
            committed = send_welcome.using(connection=connection).enqueue(2)
            # Not visible to other connections (workers) before the commit.
            with JobQueue(jq.database_url) as other:
                assert other.get_job(committed.id) is None
    assert jq.get_job(rolled_back.id) is None
    assert jq.get_job(committed.id) is not None


def test_transactional_enqueue_with_an_orm_session(jq: JobQueue) -> None:
    with Session(jq.engine) as session:
        send_welcome.using(session=session).enqueue(1)
        session.rollback()
    assert jq.count_jobs() == 0
    with Session(jq.engine) as session:
        handles = jq.enqueue_many([send_welcome.call(2), send_welcome.call(3)], session=session)
        session.execute(text("SELECT 1"))
        session.commit()
    assert [jq.get_job(h.id).args for h in handles] == [[2], [3]]  # type: ignore[union-attr]


def test_transactional_enqueue_with_the_callers_own_engine(jq: JobQueue) -> None:
    from sqlalchemy import create_engine

    import jobqueue

    engine = create_engine(jq.engine.url)
    if engine.dialect.name == "sqlite":
        jobqueue.configure_sqlite(engine)
    try:
        with engine.begin() as connection:
            handle = send_welcome.using(connection=connection).enqueue(7)
        assert jq.get_job(handle.id) is not None
    finally:
        engine.dispose()


def test_a_transactional_enqueues_handle_reads_from_the_callers_database(
    jq: JobQueue, tmp_path: Path
) -> None:
    """The default queue points elsewhere (here: a SQLite file that does not exist); a job
    written through the caller's session is read back through the caller's engine, and a
    handle whose database has no schema says to run the migrations."""
    from sqlalchemy import create_engine

    import jobqueue
    from jobqueue.queue import get_default_queue, set_default_queue

    engine = create_engine(jq.engine.url)
    if engine.dialect.name == "sqlite":
        jobqueue.configure_sqlite(engine)
    previous = get_default_queue()
    set_default_queue(JobQueue(f"sqlite:///{tmp_path}/elsewhere.db"))
    try:
        with Session(engine) as session:
            handle = send_welcome.using(session=session).enqueue(8)
            session.commit()
        assert handle.jobqueue is not None and handle.jobqueue.engine is engine
        row = handle.fetch()
        assert row is not None and row.args == [8]
        assert not (tmp_path / "elsewhere.db").exists()
    finally:
        set_default_queue(previous)
        engine.dispose()
    empty = tmp_path / "empty.db"
    create_engine(f"sqlite:///{empty}").connect().close()
    stray = replace(handle, jobqueue=JobQueue(f"sqlite:///{empty}"))
    with pytest.raises(SchemaError, match="jobrunner migrate"):
        stray.fetch()


def test_unreachable_database_names_the_url_with_the_password_masked(backend: TestDatabase) -> None:
    url = {
        "sqlite": "sqlite:////nonexistent-dir/sub/q.db",
        "postgresql": "postgresql://postgres:hunter2@127.0.0.1:1/x",
        "mysql": "mysql://root:hunter2@127.0.0.1:1/x",
    }[backend.backend]
    with pytest.raises(DatabaseUnavailableError) as raised:
        JobQueue(url).enqueue(send_welcome, 1)
    assert "hunter2" not in str(raised.value)
    assert "***" in str(raised.value) or backend.backend == "sqlite"


def test_missing_schema_says_to_migrate(fresh_database: TestDatabase) -> None:
    with (
        JobQueue(fresh_database.url) as queue,
        pytest.raises(SchemaError, match="jobrunner migrate"),
    ):
        queue.enqueue(send_welcome, 1)


def _rows_with_id(jq: JobQueue, job_id: str) -> int:
    with jq.transaction(read_only=True) as connection:
        query = text("SELECT count(*) FROM job_queue WHERE id = :id")
        return int(connection.execute(query, {"id": job_id}).scalar_one())


def test_an_enqueue_whose_answer_is_lost_is_written_once(jq: JobQueue) -> None:
    """The server carries out the write but the connection dies before the answer arrives:
    enqueue finds out whether it was written (the id is its own) and neither loses the job
    nor writes it twice."""
    if jq.dialect == "sqlite":
        pytest.skip("SQLite is a local file: no answer can be lost on the way")
    with CuttableProxy(jq.database_url) as proxy, JobQueue(proxy.url) as client:
        send_welcome.using(jobqueue=client).enqueue(1)  # the pool holds a connection now
        proxy.lose_next_answer()
        handle = send_welcome.using(jobqueue=client).enqueue(2)
        assert not proxy._lose_answer, "the enqueue sent nothing through the proxy"
        assert _rows_with_id(jq, handle.id) == 1
        assert jq.count_jobs() == 2


def test_an_enqueue_on_a_connection_the_server_closed_is_sent_again(jq: JobQueue) -> None:
    if jq.dialect == "sqlite":
        pytest.skip("SQLite is a local file: it has no connection to close")
    with CuttableProxy(jq.database_url) as proxy, JobQueue(proxy.url) as client:
        send_welcome.using(jobqueue=client).enqueue(1)
        assert proxy.take_down() == 1  # the pooled connection is cut
        proxy.restore()
        handle = send_welcome.using(jobqueue=client).enqueue(2)
        assert _rows_with_id(jq, handle.id) == 1
        assert jq.count_jobs() == 2


def test_enqueue_to_a_sqlite_file_never_migrated_leaves_no_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "typo.db"
    with pytest.raises(SchemaError, match=r"does not exist; run `jobrunner migrate"):
        JobQueue(f"sqlite:///{path}").enqueue(send_welcome, 1)
    assert not path.exists()


def test_a_batch_on_a_connection_the_server_closed_is_sent_again(jq: JobQueue) -> None:
    """The batch's fastest path (PostgreSQL's COPY on the driver's connection) meets a cut
    connection like any statement: the connection is dropped, the transaction tried again, and
    every job is written once."""
    if jq.dialect == "sqlite":
        pytest.skip("SQLite is a local file: it has no connection to close")
    with CuttableProxy(jq.database_url) as proxy, JobQueue(proxy.url) as client:
        client.enqueue_many([send_welcome.call(0)])
        assert proxy.take_down() == 1  # the pooled connection is cut
        proxy.restore()
        handles = client.enqueue_many([send_welcome.call(n) for n in range(1, 101)])
        assert len({handle.id for handle in handles}) == 100
        assert jq.count_jobs() == 101
        assert all(_rows_with_id(jq, handle.id) == 1 for handle in handles[::10])


def test_statement_listeners_on_the_engine_see_every_enqueue(jq: JobQueue) -> None:
    """Instrumentation that hooks the engine's statements (OpenTelemetry's SQLAlchemy
    instrumentation, a test's fault injection) sees the single and the batch enqueue's INSERT:
    with a listener, neither takes the driver's own connection around SQLAlchemy."""
    seen: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_rest: object) -> None:
        seen.append(statement)

    event.listen(jq.engine, "before_cursor_execute", record)
    try:
        send_welcome.using(jobqueue=jq).enqueue(1)
        jq.enqueue_many([send_welcome.call(n) for n in range(2, 12)])
    finally:
        event.remove(jq.engine, "before_cursor_execute", record)
    inserts = [statement for statement in seen if "INSERT INTO job_queue" in statement]
    assert len(inserts) == 2, seen
    assert jq.count_jobs() == 11


@pytest.mark.parametrize("prepared", [False, True])
def test_prepared_statements_only_when_asked_for(
    jq: JobQueue, backend: TestDatabase, prepared: bool
) -> None:
    """Off by default (PgBouncer before 1.21 cannot hold them); asked for, psycopg prepares
    the single enqueue's INSERT from its fifth use, and the jobs are written as ever."""
    if jq.dialect != "postgresql" or backend.route == PGBOUNCER:
        pytest.skip("server-side prepared statements: PostgreSQL, connected directly")
    with JobQueue(jq.database_url, prepared_statements=prepared) as producer:
        handles = [send_welcome.using(jobqueue=producer).enqueue(n) for n in range(8)]
        with producer.engine.connect() as connection:  # the pool's one connection
            statements = connection.exec_driver_sql(
                "SELECT statement FROM pg_prepared_statements"
            ).scalars()
            inserts = [text for text in statements if "INSERT INTO job_queue" in text]
    assert bool(inserts) is prepared
    assert all(_rows_with_id(jq, handle.id) == 1 for handle in handles)
