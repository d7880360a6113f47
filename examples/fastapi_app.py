"""A FastAPI app that enqueues a job in the same transaction as the row that caused it.

``POST /signups`` inserts a signup through the request's SQLAlchemy session and enqueues
``send_welcome`` with ``.using(session=session)``: the job is one more row in that transaction.
If the request fails after the enqueue (here: the card is declined), the transaction rolls back
and takes the job with it, so no welcome mail ever goes to a signup that does not exist. If it
commits, the job is there for a worker, even if the process dies the moment after.

Run it, with a worker beside it, from the repository root::

    pip install 'jobqueue[postgres]' fastapi uvicorn
    export APP_DATABASE_URL=sqlite:///app.db   # or postgresql+psycopg://user:pass@host/db
    export JOBQUEUE_DATABASE_URL="$APP_DATABASE_URL"   # jobrunner's setting: the same database
    jobrunner migrate                                  # jobqueue's tables (alembic, in the package)
    uvicorn examples.fastapi_app:app                   # creates the app's tables at startup
    jobrunner work --app examples.fastapi_app          # in a second terminal (or process manager)

    curl -X POST localhost:8000/signups -H 'content-type: application/json' \\
         -d '{"email": "ada@example.com", "card": "4242424242424242"}'
    curl localhost:8000/signups/1                      # "welcome_mail_sent": true once it ran

The app and the worker must use the same database: the app reads ``APP_DATABASE_URL``,
``jobrunner`` reads ``JOBQUEUE_DATABASE_URL`` (or ``--database-url``). A worker left on its
default (``./jobqueue.db``) never sees these jobs; it logs the URL it uses when it starts.
docs/web-apps.md explains the pattern and its pitfalls; tests/test_integrations.py runs this app.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import DateTime, ForeignKey, String, create_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

import jobqueue
from jobqueue import job

DATABASE_URL = os.environ.get("APP_DATABASE_URL", "sqlite:///app.db")
engine = create_engine(DATABASE_URL)
if engine.dialect.name == "sqlite":
    # Transactions that begin with BEGIN IMMEDIATE, like jobqueue's own: a request waits for
    # the write lock instead of failing with "database is locked" while a worker writes.
    jobqueue.configure_sqlite(engine)


class Base(DeclarativeBase):
    pass


class Signup(Base):
    __tablename__ = "signups"
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)


class WelcomeMail(Base):
    """What ``send_welcome`` did: it stands in for a mail provider's API."""

    __tablename__ = "welcome_mails"
    signup_id: Mapped[int] = mapped_column(ForeignKey("signups.id"), primary_key=True)
    sent_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


@job(name="fastapi_example.send_welcome", queue="mail")
def send_welcome(signup_id: int) -> None:
    """Runs in ``jobrunner work``, which imports this module and so shares ``engine``."""
    with Session(engine) as session, session.begin():
        # A job can run twice (a worker killed after the mail went out): look first.
        if session.get(WelcomeMail, signup_id) is None:
            session.add(WelcomeMail(signup_id=signup_id, sent_at=datetime.now(UTC)))


def get_session() -> Iterator[Session]:
    """One session and transaction per request: commit if the endpoint returns, roll back
    (the job included) if it raises."""
    with Session(engine) as session, session.begin():
        yield session


# scope="function" (FastAPI >= 0.121) commits before the response is sent, so a client told
# 201 can rely on the signup and its job being committed. With the default scope the commit
# would run after the response, and a failed commit would go unreported.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    # The app's own tables. A real app runs its alembic migrations here or at deploy, with
    # include_name=jobqueue.migrations.include_name in env.py (README: "Using jobqueue in an
    # app with its own alembic"); jobqueue's tables come from `jobrunner migrate`.
    Base.metadata.create_all(engine)
    yield
    engine.dispose()


app = FastAPI(title="signups", lifespan=lifespan)

DECLINED_CARD = "4000000000000002"  # a payment provider's test card that is always declined


class PaymentDeclinedError(Exception):
    pass


def charge_first_month(card: str) -> None:
    """Stands in for a payment provider called after the job was enqueued."""
    if card == DECLINED_CARD:
        raise PaymentDeclinedError("card declined")


class SignupIn(BaseModel):
    email: str
    card: str


@app.post("/signups", status_code=201)
def create_signup(body: SignupIn, session: SessionDep) -> dict[str, object]:
    signup = Signup(email=body.email)
    session.add(signup)
    session.flush()  # the INSERT, so signup.id is known
    welcome = send_welcome.using(session=session).enqueue(signup.id)
    charge_first_month(body.card)  # raises after the enqueue: both roll back
    return {"id": signup.id, "email": signup.email, "welcome_job": welcome.id}


@app.exception_handler(PaymentDeclinedError)
def payment_declined(request: Request, error: Exception) -> JSONResponse:
    # By the time this runs the exception has passed through get_session: rolled back.
    return JSONResponse({"detail": str(error)}, status_code=402)


@app.get("/signups/{signup_id}")
def read_signup(signup_id: int, session: SessionDep) -> dict[str, object]:
    signup = session.get(Signup, signup_id)
    if signup is None:
        raise HTTPException(status_code=404, detail="no such signup")
    mail = session.get(WelcomeMail, signup_id)
    return {"id": signup.id, "email": signup.email, "welcome_mail_sent": mail is not None}


@app.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(app)
