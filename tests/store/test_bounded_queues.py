"""Bounded queues (``max_pending``): an enqueue that would take the queue past its bound
raises QueueFullError and writes nothing (all or nothing for enqueue_many); running and
finished jobs do not count, scheduled ones do; ``block=`` waits for room. On every backend."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from jobqueue import JobCall, JobQueue, QueueFullError, job
from jobqueue import enqueue as enqueue_module
from jobqueue.errors import ConfigurationError
from jobqueue.schema import PENDING
from jobqueue.testing import drain

ran: list[str] = []


@job(name="bounded.work", queue="bounded")
def work(label: str) -> None:
    ran.append(label)


@job(name="bounded.free", queue="free")
def free(label: str) -> None:
    ran.append(label)


@pytest.fixture
def bounded(jq: JobQueue) -> Iterator[JobQueue]:
    ran.clear()
    queue = JobQueue(jq.database_url, queues={"bounded": {"max_pending": 3}})
    yield queue
    queue.engine.dispose()


def test_an_enqueue_past_the_bound_is_refused_and_writes_nothing(bounded: JobQueue) -> None:
    enqueue = work.using(jobqueue=bounded)
    enqueue.enqueue("now")
    enqueue.enqueue_in(timedelta(hours=1), "scheduled")  # a scheduled job counts
    with pytest.raises(QueueFullError, match="'bounded' is full: 2 job") as caught:
        bounded.enqueue_many([work.call("a"), work.call("b")])  # all or nothing
    assert (caught.value.queue, caught.value.max_pending, caught.value.waiting) == ("bounded", 3, 2)
    assert bounded.count_jobs(queue="bounded") == 2
    enqueue.enqueue("third")
    with pytest.raises(QueueFullError):
        enqueue.enqueue("fourth")
    free.using(jobqueue=bounded).enqueue("elsewhere")  # other queues are not bounded
    assert bounded.count_jobs(queue="bounded") == 3 and bounded.count_jobs(queue="free") == 1


def test_finished_jobs_make_room(bounded: JobQueue) -> None:
    bounded.enqueue_many([work.call(str(i)) for i in range(3)])
    with pytest.raises(QueueFullError):
        work.using(jobqueue=bounded).enqueue("refused")
    drain(bounded, queues=["bounded"], max_jobs=2)
    bounded.enqueue_many([work.call("x"), work.call("y")])
    assert bounded.count_jobs(status=PENDING, queue="bounded") == 3


def test_block_waits_for_room(bounded: JobQueue, monkeypatch: pytest.MonkeyPatch) -> None:
    bounded.enqueue_many([work.call(str(i)) for i in range(3)])
    waiting = threading.Event()
    wait_for_room = enqueue_module.wait_for_room

    def noted_wait(seconds: float) -> None:  # the enqueue found the queue full and waits
        waiting.set()
        wait_for_room(seconds)

    monkeypatch.setattr(enqueue_module, "wait_for_room", noted_wait)

    def make_room() -> None:
        assert waiting.wait(30)
        drain(bounded, queues=["bounded"], max_jobs=1)

    helper = threading.Thread(target=make_room)
    helper.start()
    handle = work.using(jobqueue=bounded, block=timedelta(seconds=30)).enqueue("waited")
    helper.join(30)
    assert waiting.is_set()
    record = bounded.get_job(handle.id)
    assert record is not None and record.status == PENDING
    with pytest.raises(QueueFullError):
        work.using(jobqueue=bounded, block=0.2).enqueue("gives up")


def test_a_bounded_queue_refuses_inside_a_callers_transaction(bounded: JobQueue) -> None:
    bounded.enqueue_many([work.call(str(i)) for i in range(3)])
    with bounded.transaction() as connection:
        with pytest.raises(QueueFullError):
            work.using(jobqueue=bounded, connection=connection).enqueue("x")
        free.using(jobqueue=bounded, connection=connection).enqueue("the caller goes on")
    assert bounded.count_jobs(queue="free") == 1
    with bounded.transaction() as connection, pytest.raises(ValueError, match="block="):
        bounded.enqueue_many([work.call("x")], connection=connection, block=1)


def test_max_pending_is_read_from_pyproject(
    jq: JobQueue, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "pyproject.toml").write_text(
        "[tool.jobqueue.queues.bounded]\nmax_pending = 1\n", encoding="utf-8"
    )
    monkeypatch.chdir(tmp_path)
    queue = JobQueue(jq.database_url)
    try:
        assert queue.max_pending == {"bounded": 1}
        queue.enqueue_many([JobCall("bounded.work", args=("one",), queue="bounded")])
        with pytest.raises(QueueFullError):
            queue.enqueue_many([JobCall("bounded.work", args=("two",), queue="bounded")])
    finally:
        queue.engine.dispose()


@pytest.mark.parametrize(
    ("queues", "message"),
    [
        ({"q": {"max_pending": 0}}, "max_pending of queue 'q' must be an integer >= 1"),
        ({"q": {"max_pending": "10"}}, "must be an integer >= 1, not '10'"),
        ({"q": {"max_pendings": 10}}, "unknown setting"),
        ({"*": {"max_pending": 1}}, "queue must be"),
        ({"q": 10}, "must be a table"),
    ],
)
def test_bad_queue_settings_are_refused(queues: object, message: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=message):
        JobQueue(f"sqlite:///{tmp_path / 'x.db'}", queues=queues)  # type: ignore[arg-type]
