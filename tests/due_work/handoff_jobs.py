"""The jobs of the core handoff contracts: each does one thing the harness can see, and writes
what it did to tables in the queue's own database, where both the test and the recovery
process (``jobrunner work --burst`` imports this module) can read it."""

from __future__ import annotations

from sqlalchemy import Column, Engine, Integer, MetaData, String, Table, create_engine, insert
from sqlalchemy.exc import IntegrityError

from jobqueue import configure_sqlite, current_job, get_default_queue, job

metadata = MetaData()
mailbox = Table(
    "dw_mailbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", Integer, nullable=False),
    Column("idempotency_key", String(64), nullable=True, unique=True),
)


_engines: dict[str, Engine] = {}


def provider() -> Engine:
    """The provider's own connection: another system, not the worker's (the harness kills and
    loses replies on the worker's connections; the provider's call is the ExternalCall)."""
    url = get_default_queue().database_url
    if url not in _engines:
        engine = _engines[url] = create_engine(url)
        if engine.dialect.name == "sqlite":
            configure_sqlite(engine)
    return _engines[url]


class Mailbox:
    """The "external service": a provider that sends what it is asked to, and deduplicates a
    request that carries a key it has seen (as Stripe's ``Idempotency-Key`` does)."""

    @staticmethod
    def send(user_id: int, idempotency_key: str | None = None) -> None:
        try:
            with provider().begin() as connection:
                connection.execute(
                    insert(mailbox).values(user_id=user_id, idempotency_key=idempotency_key)
                )
        except IntegrityError:
            pass  # seen that key: sent already


@job(name="handoffs.welcome", backoff=0)
def welcome(user_id: int) -> None:
    Mailbox.send(user_id)


@job(name="handoffs.welcome_keyed", backoff=0)
def welcome_keyed(user_id: int) -> None:
    running = current_job()
    assert running is not None
    Mailbox.send(user_id, running.idempotency_key)


@job(name="handoffs.once", max_attempts=1)
def once(user_id: int) -> None:
    running = current_job()
    assert running is not None
    Mailbox.send(user_id, running.idempotency_key)


@job(name="handoffs.flaky", backoff=0)
def flaky(user_id: int) -> None:
    running = current_job()
    assert running is not None
    if running.attempt == 1:
        raise RuntimeError("the provider timed out")
    Mailbox.send(user_id, running.idempotency_key)


@job(name="handoffs.unique", unique=True, backoff=0)
def unique(user_id: int) -> None:
    running = current_job()
    assert running is not None
    Mailbox.send(user_id, running.idempotency_key)


@job(name="handoffs.one_at_a_time", concurrency_key="mailer", concurrency_limit=1, backoff=0)
def one_at_a_time(user_id: int) -> None:
    running = current_job()
    assert running is not None
    Mailbox.send(user_id, running.idempotency_key)
