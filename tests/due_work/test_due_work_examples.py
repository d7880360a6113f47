"""The examples under the harness, in one contract: the quickstart's jobs run by a worker, and the
transactional signup (the user row and its mail job in one transaction) with the app's own engine
watched."""

from __future__ import annotations

import itertools
from typing import Any

from due_work_harness import HandoffHistory, due_work_contract_suite
from sqlalchemy import select
from sqlalchemy.orm import Session

import examples.quickstart as quickstart
import examples.transactional as transactional
from jobqueue import get_default_queue
from jobqueue.testing import due_work

_emails = itertools.count(1)


def _quickstart_enqueued() -> list[str]:
    """ARRANGE: the quickstart's own main(); its handle is what it added to the due jobs."""
    queue = get_default_queue()
    before = {job.id for job in queue.due_jobs(limit=None)}
    quickstart.main()
    return sorted({job.id for job in queue.due_jobs(limit=None)} - before)


def _statuses(job_ids: list[str]) -> list[str]:
    """OBSERVE: the statuses of the quickstart's jobs."""
    rows = [get_default_queue().get_job(job_id) for job_id in job_ids]
    return sorted(row.status if row is not None else "gone" for row in rows)


#: The quickstart's fifteen jobs in one claim: its history is that every job runs, and a batch
#: of two would add a death and a lost reply after each of seven more claims like the first
#: (the core handoffs cover a worker's claim after its outcomes).
QUICKSTART_BATCH = 16


def _signup_session() -> tuple[Session, str]:
    """ARRANGE: the app's session on its own engine, which the harness watches too."""
    harness = due_work.active()
    engine = harness.app_engine(get_default_queue().database_url)
    return Session(engine), f"user{next(_emails)}@example.com"


def _signup(handle: tuple[Session, str]) -> None:
    session, email = handle
    try:
        transactional.signup(session, email)
    finally:
        session.close()


def _signed_up(handle: tuple[Session, str]) -> tuple[bool, list[str]]:
    """OBSERVE: whether the user exists, and the statuses of mail jobs for that user."""
    _session, email = handle
    with Session(due_work.active().app_engines[0]) as session:
        user_id = session.scalars(
            select(transactional.User.id).where(transactional.User.email == email)
        ).first()
    mails = get_default_queue().admin.list_jobs(name="examples.welcome_mail", limit=1000)
    mine = [job.status for job in mails if user_id is not None and _first_arg(job) == user_id]
    return user_id is not None, sorted(mine)


def _first_arg(job: Any) -> object:
    return job.args[0] if job.args else None


EXAMPLES = due_work.contract(
    "examples/quickstart.py and examples/transactional.py",
    handoffs=(
        due_work.job_history(
            "a worker runs what the quickstart enqueued",
            enqueue=_quickstart_enqueued,
            observe=_statuses,
            batch=QUICKSTART_BATCH,
        ),
        HandoffHistory(
            name="a signup commits its user and its mail job together",
            arrange=_signup_session,
            transition=_signup,
            observe=_signed_up,
        ),
    ),
)


@due_work_contract_suite(EXAMPLES)
class TestExamples:
    """One contract for both examples: jobqueue's own profiles run once beside their handoffs."""
