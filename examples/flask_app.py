"""A Flask app (Flask-SQLAlchemy) that enqueues a job in the same transaction as its row.

``POST /signups`` adds a signup to ``db.session`` and enqueues ``send_welcome`` with
``.using(session=db.session)``: the job is one more row in the request's transaction, written by
``db.session.commit()`` together with the signup. If the view raises after the enqueue (here: the
card is declined), ``commit()`` is never reached and Flask-SQLAlchemy rolls the session back when
the request ends, job included.

Run it, with a worker beside it, from the repository root::

    pip install 'jobqueue[postgres]' flask flask-sqlalchemy
    export APP_DATABASE_URL=sqlite:///$PWD/app.db   # or postgresql+psycopg://user:pass@host/db
    export JOBQUEUE_DATABASE_URL="$APP_DATABASE_URL"   # jobrunner's setting: the same database
    jobrunner migrate                                  # jobqueue's tables (alembic, in the package)
    flask --app examples.flask_app init-db             # the app's own tables
    flask --app examples.flask_app run
    jobrunner work --app examples.flask_app            # in a second terminal (or process manager)

    curl -X POST localhost:5000/signups -H 'content-type: application/json' \\
         -d '{"email": "ada@example.com", "card": "4242424242424242"}'
    curl localhost:5000/signups/1                      # "welcome_mail_sent": true once it ran

Give SQLite an absolute path: Flask-SQLAlchemy reads a relative one against the app's instance
folder, ``jobrunner`` against its working directory, and they would open two different files.
docs/web-apps.md explains the pattern and its pitfalls; tests/test_integrations.py runs this app.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

from flask import Flask, request
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import DateTime, ForeignKey, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

import jobqueue
from jobqueue import job


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)
app = Flask(__name__)
app.config["SQLALCHEMY_DATABASE_URI"] = os.environ.get(
    "APP_DATABASE_URL", f"sqlite:///{Path('app.db').resolve()}"
)
db.init_app(app)
with app.app_context():
    if db.engine.dialect.name == "sqlite":
        # Transactions that begin with BEGIN IMMEDIATE, like jobqueue's own: a request waits
        # for the write lock instead of failing with "database is locked" while a worker writes.
        jobqueue.configure_sqlite(db.engine)


class Signup(db.Model):
    __tablename__ = "signups"
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)


class WelcomeMail(db.Model):
    """What ``send_welcome`` did: it stands in for a mail provider's API."""

    __tablename__ = "welcome_mails"
    signup_id: Mapped[int] = mapped_column(ForeignKey("signups.id"), primary_key=True)
    sent_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


@job(name="flask_example.send_welcome", queue="mail")
def send_welcome(signup_id: int) -> None:
    """Runs in ``jobrunner work``, outside any request: it pushes an app context of its own."""
    with app.app_context():
        # A job can run twice (a worker killed after the mail went out): look first.
        if db.session.get(WelcomeMail, signup_id) is None:
            db.session.add(WelcomeMail(signup_id=signup_id, sent_at=datetime.now(UTC)))
            db.session.commit()


@app.cli.command("init-db")
def init_db() -> None:
    """Create the app's own tables. A real app uses its migrations (Flask-Migrate/alembic, with
    include_name=jobqueue.migrations.include_name in env.py); jobqueue's tables come from
    `jobrunner migrate`."""
    db.create_all()


DECLINED_CARD = "4000000000000002"  # a payment provider's test card that is always declined


class PaymentDeclinedError(Exception):
    pass


def charge_first_month(card: str) -> None:
    """Stands in for a payment provider called after the job was enqueued."""
    if card == DECLINED_CARD:
        raise PaymentDeclinedError("card declined")


@app.post("/signups")
def create_signup() -> tuple[dict[str, object], int]:
    body = request.get_json()
    signup = Signup(email=body["email"])
    db.session.add(signup)
    db.session.flush()  # the INSERT, so signup.id is known
    welcome = send_welcome.using(session=db.session).enqueue(signup.id)
    charge_first_month(body["card"])  # raises after the enqueue: commit() is never reached
    db.session.commit()  # the signup and its job, together
    return {"id": signup.id, "email": signup.email, "welcome_job": welcome.id}, 201


@app.errorhandler(PaymentDeclinedError)
def payment_declined(error: PaymentDeclinedError) -> tuple[dict[str, str], int]:
    # Nothing was committed; the session is rolled back when the request's app context ends.
    return {"detail": str(error)}, 402


@app.get("/signups/<int:signup_id>")
def read_signup(signup_id: int) -> dict[str, object]:
    signup = db.get_or_404(Signup, signup_id)
    mail = db.session.get(WelcomeMail, signup_id)
    return {"id": signup.id, "email": signup.email, "welcome_mail_sent": mail is not None}


@app.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


if __name__ == "__main__":
    app.run()
