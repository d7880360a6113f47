"""A user's module, as a service's developers would write it, for tests/test_typing.py.

Every line whose comment starts with "wrong" is a call a type checker must reject; every
other line must check clean under ``mypy --strict`` and ``pyright --strict``. One call per
line, so the reported line is the marked one. Never imported at run time.
"""

from __future__ import annotations

import inspect
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session, scoped_session

from jobqueue import EnqueuedJob, Job, JobCall, JobQueue, JobRecord, by_name, job


@job(name="typing.send_email", max_attempts=3)
def send_email(to: str, subject: str, *, urgent: bool = False) -> None:
    """A plain job."""


@job
async def notify(user_id: int) -> str:
    """An async job."""
    return str(user_id)


class Resize(Job, name="typing.resize", queue="images"):
    def perform(self, path: str, size: int = 100) -> None:
        """A class job."""


def right(jq: JobQueue, session: Session) -> None:
    handle: EnqueuedJob = send_email.enqueue("a@example.com", "hi")
    job_id: str = handle.id
    row: JobRecord | None = handle.fetch()
    send_email.enqueue("a@example.com", subject="hi", urgent=True)
    send_email.enqueue_in(timedelta(minutes=5), "a@example.com", "hi")
    send_email.enqueue_at(datetime(2030, 1, 1, tzinfo=UTC), "a@example.com", "hi")
    call: JobCall = send_email.call("a@example.com", "hi")
    jq.enqueue_many([call, send_email.call("b@example.com", "yo")])
    send_email.using(queue="mail", priority=-5).enqueue("a@example.com", "hi")
    send_email.using(session=session).using(max_attempts=1).enqueue("a@example.com", "hi")
    send_email("a@example.com", "hi")  # a job is still a function
    notify.enqueue(42)
    notify.using(queue="push").enqueue_in(timedelta(seconds=1), 42)
    Resize.enqueue("a.png")
    Resize.enqueue("a.png", size=64)
    Resize.enqueue_in(timedelta(seconds=1), "a.png", 32)
    Resize.using(priority=1).enqueue("a.png")
    Resize.call("a.png")
    by_name("billing.charge").enqueue(1, "anything", goes=True)
    coroutine_function: bool = inspect.iscoroutinefunction(notify)
    print(job_id, row, coroutine_function)


def right_scoped(scoped: scoped_session[Session]) -> None:
    """Flask-SQLAlchemy's db.session is a scoped_session."""
    send_email.using(session=scoped).enqueue("a@example.com", "hi")


async def right_async() -> None:
    text: str = await notify(1)
    print(text)


def wrong(jq: JobQueue, session: Session) -> None:
    send_email.enqueue("a@example.com")  # wrong: a required argument is missing
    send_email.enqueue("a@example.com", "hi", "extra")  # wrong: one argument too many
    send_email.enqueue(1, "hi")  # wrong: int for str
    send_email.enqueue("a@example.com", subject=2)  # wrong: int for a str keyword
    send_email.enqueue("a@example.com", "hi", nope=1)  # wrong: unknown keyword
    send_email.enqueue("a@example.com", "hi", True)  # wrong: urgent is keyword-only
    send_email.enqueue_in(5, "a@example.com", "hi")  # wrong: the delay is a timedelta
    send_email.enqueue_at("tomorrow", "a@example.com", "hi")  # wrong: the time is a datetime
    send_email.call("a@example.com")  # wrong: a required argument is missing
    send_email.using(queue=1)  # wrong: a queue is a str
    send_email.using(nope=1)  # wrong: using() has no such option
    send_email.using(queue="mail").enqueue("a@example.com")  # wrong: missing argument
    send_email.using(session=session).enqueue(1, "hi")  # wrong: int for str
    send_email("a@example.com")  # wrong: the direct call is typed too
    count: int = send_email.enqueue("a@example.com", "hi")  # wrong: enqueue gives a handle
    jq.enqueue_many(send_email.call("a@example.com", "hi"))  # wrong: a list is expected
    notify.enqueue("42")  # wrong: str for int
    notify.enqueue_at(datetime(2030, 1, 1, tzinfo=UTC))  # wrong: user_id is missing
    Resize.enqueue()  # wrong: path is missing
    Resize.enqueue("a.png", size="big")  # wrong: str for int
    Resize.enqueue_in(timedelta(seconds=1), 3)  # wrong: int for str
    Resize.using(queue="q").enqueue(3)  # wrong: int for str
    Resize.call("a.png", 1, 2)  # wrong: one argument too many
    Resize.using(priority="high")  # wrong: a priority is an int
    print(count)


@job(max_attempts="3")  # wrong: max_attempts is an int
def bad_options() -> None: ...


@job(queue=5)  # wrong: a queue is a str
def bad_queue() -> None: ...
