"""Calling another service exactly once from a job that may run more than once.

A worker killed after the call and before its outcome is written runs the job again. The call
must then do nothing new: give it ``current_job().idempotency_key``, the same on every attempt
of the job. Here the "service" is a table with a unique constraint on that key, in one
transaction with the effect, the pattern for your own database; a payment API takes the same
key as its ``Idempotency-Key`` header.

    jobrunner migrate && python examples/exactly_once.py
"""

from __future__ import annotations

from sqlalchemy import String, create_engine, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

import jobqueue
from jobqueue import current_job, job
from jobqueue.testing import drain


class Base(DeclarativeBase):
    pass


class Charge(Base):
    __tablename__ = "example_charges"
    id: Mapped[int] = mapped_column(primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)
    order_id: Mapped[int]


attempts_made: list[int] = []


@job(name="examples.charge_order", backoff=0)
def charge_order(order_id: int) -> None:
    running = current_job()
    assert running is not None
    engine = create_engine(jobqueue.get_default_queue().database_url)
    try:
        with engine.begin() as connection:
            connection.execute(
                insert(Charge).values(idempotency_key=running.idempotency_key, order_id=order_id)
            )
    except IntegrityError:
        pass  # an earlier attempt of this job charged already: nothing to do again
    finally:
        engine.dispose()
    attempts_made.append(running.attempt)
    if running.attempt == 1:
        # As if the worker died after the charge and before its outcome was written.
        raise RuntimeError("lost after the charge")


def main() -> None:
    queue = jobqueue.get_default_queue()
    engine = create_engine(queue.database_url)
    Base.metadata.create_all(engine)
    charge_order.enqueue(7)
    counts = drain(queue)
    with engine.connect() as connection:
        charges = connection.execute(select(Charge.order_id)).scalars().all()
    engine.dispose()
    print(f"attempts: {attempts_made}, outcomes: {dict(counts)}, charges: {charges}")
    assert attempts_made == [1, 2] and charges == [7], "the order must be charged once"


if __name__ == "__main__":
    main()
