"""Transactional enqueue: the job commits or rolls back with the data that caused it.

A signup that fails after the user row was written must not send a welcome mail for a user that
does not exist; a signup that commits must never lose its mail. Passing your ORM ``session`` (or
Core ``connection``) to ``using()`` puts the job row in your transaction.

    jobrunner migrate && python examples/transactional.py
"""

from __future__ import annotations

from sqlalchemy import String, create_engine, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

import jobqueue
from jobqueue import job


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "example_users"
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(200), unique=True)


@job(name="examples.welcome_mail", queue="mail")
def welcome_mail(user_id: int) -> None:
    print(f"mailing user {user_id}")


def signup(session: Session, email: str, *, fail: bool = False) -> None:
    with session.begin():
        user = User(email=email)
        session.add(user)
        session.flush()
        welcome_mail.using(session=session).enqueue(user.id)
        if fail:
            raise RuntimeError("payment provider said no")


def main() -> None:
    queue = jobqueue.get_default_queue()
    # Your app's own engine on the same database; on SQLite, configure it like jobqueue's.
    engine = create_engine(queue.database_url)
    if engine.dialect.name == "sqlite":
        jobqueue.configure_sqlite(engine)
    Base.metadata.create_all(engine)
    before = queue.count_jobs()
    with Session(engine) as session:
        signup(session, "ada@example.com")
        try:
            signup(session, "bob@example.com", fail=True)
        except RuntimeError as error:
            print(f"signup failed ({error}): neither the user nor the mail job was written")
        users = session.scalars(select(User.email)).all()
    print(f"users: {users}; jobs added: {queue.count_jobs() - before}")
    assert users == ["ada@example.com"] and queue.count_jobs() - before == 1
    Base.metadata.drop_all(engine)
    engine.dispose()


if __name__ == "__main__":
    main()
