"""examples/fastapi_app.py and examples/flask_app.py, run as their users run them.

Requests go through FastAPI's and Flask's test clients on each backend, and once through a real
uvicorn server over HTTP; a real `jobrunner work --burst` runs what they enqueued. What must
hold: a committed request leaves exactly one signup and one job, and the job runs; a request that
raises after its enqueue (a declined card) leaves neither.
"""

from __future__ import annotations

import importlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from jobqueue import EnqueuedJob, JobQueue, migrations
from jobqueue.db import create_engine

from workers import FAST

REPO = Path(__file__).resolve().parents[1]
GOOD_CARD = "4242424242424242"


def load_example(name: str, database_url: str, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """Import ``examples.<name>`` afresh, configured (as in production) by the environment."""
    monkeypatch.setenv("APP_DATABASE_URL", database_url)
    monkeypatch.syspath_prepend(str(REPO))
    sys.modules.pop(f"examples.{name}", None)
    return importlib.import_module(f"examples.{name}")


def count(engine: Engine, model: Any) -> int:
    with engine.connect() as connection:
        return int(connection.scalar(select(func.count()).select_from(model)) or 0)


def emails(engine: Engine, model: Any) -> list[str]:
    with engine.connect() as connection:
        return list(connection.scalars(select(model.email).order_by(model.id)))


def payload(response: Any) -> Any:
    """The JSON body of an httpx (FastAPI's client) or a Werkzeug (Flask's client) response."""
    return response.json() if callable(response.json) else response.json


def run_worker(app_module: str, database_url: str) -> None:
    """`jobrunner work --app <app_module> --burst` beside the app: same database, same code."""
    env = {
        **os.environ,
        **FAST,
        "JOBQUEUE_DATABASE_URL": database_url,
        "APP_DATABASE_URL": database_url,
    }
    done = subprocess.run(
        [sys.executable, "-m", "jobqueue", "work", "--app", app_module, "--burst"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


def assert_committed_request_ran_and_declined_left_nothing(
    jq: JobQueue, engine: Engine, example: ModuleType, client: Any
) -> None:
    """The story both apps tell, through ``client`` (FastAPI's or Flask's test client)."""
    created = client.post("/signups", json={"email": "ada@example.com", "card": GOOD_CARD})
    assert created.status_code == 201, created.text
    signup_id, job_id = payload(created)["id"], payload(created)["welcome_job"]
    assert count(engine, example.Signup) == 1
    assert jq.count_jobs() == 1
    row = jq.get_job(job_id)
    assert row is not None and row.status == "pending"
    assert (row.name, row.queue, row.args) == (example.send_welcome.name, "mail", [signup_id])

    declined = client.post(
        "/signups", json={"email": "bob@example.com", "card": example.DECLINED_CARD}
    )
    assert declined.status_code == 402, declined.text
    assert emails(engine, example.Signup) == ["ada@example.com"]  # no row from the declined one
    assert jq.count_jobs() == 1  # and no job

    run_worker(example.__name__, jq.database_url)
    done = jq.get_job(job_id)
    assert done is not None and (done.status, done.attempts) == ("succeeded", 1), done
    assert jq.count_jobs() == jq.count_jobs(status="succeeded") == 1
    assert count(engine, example.WelcomeMail) == 1
    shown = client.get(f"/signups/{signup_id}")
    assert shown.status_code == 200 and payload(shown)["welcome_mail_sent"] is True


@pytest.fixture
def fastapi_example(jq: JobQueue, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    example = load_example("fastapi_app", jq.database_url, monkeypatch)
    try:
        yield example
    finally:
        example.Base.metadata.drop_all(example.engine)
        example.engine.dispose()
        sys.modules.pop(example.__name__, None)


@pytest.fixture
def flask_example(jq: JobQueue, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    example = load_example("flask_app", jq.database_url, monkeypatch)
    created = example.app.test_cli_runner().invoke(args=["init-db"])
    assert created.exit_code == 0, created.output
    try:
        yield example
    finally:
        with example.app.app_context():
            example.db.drop_all()
            example.db.engine.dispose()
        sys.modules.pop(example.__name__, None)


def test_fastapi_signup_commits_with_its_job_and_a_declined_one_leaves_neither(
    jq: JobQueue, fastapi_example: ModuleType
) -> None:
    from fastapi.testclient import TestClient

    with TestClient(fastapi_example.app) as client:  # runs the lifespan: the app's tables
        assert_committed_request_ran_and_declined_left_nothing(
            jq, fastapi_example.engine, fastapi_example, client
        )


def test_flask_signup_commits_with_its_job_and_a_declined_one_leaves_neither(
    jq: JobQueue, flask_example: ModuleType
) -> None:
    with flask_example.app.app_context():
        engine = flask_example.db.engine
    assert_committed_request_ran_and_declined_left_nothing(
        jq, engine, flask_example, flask_example.app.test_client()
    )


@pytest.fixture
def uvicorn_server(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """`uvicorn examples.fastapi_app:app` on a loopback socket bound here and handed over with
    ``--fd`` (no free-port race); yields its base URL and the database URL, stops it after."""
    database_url = f"sqlite:///{tmp_path / 'app.db'}"
    engine = create_engine(database_url)
    migrations.upgrade(engine)
    engine.dispose()
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    log = tmp_path / "uvicorn.log"
    env = {**os.environ, "APP_DATABASE_URL": database_url}
    command = [sys.executable, "-m", "uvicorn", "examples.fastapi_app:app"]
    with log.open("wb") as out:
        server = subprocess.Popen(
            [*command, "--fd", str(listener.fileno())],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            pass_fds=[listener.fileno()],
        )
    listener.close()  # the server holds its own copy
    try:
        yield f"http://127.0.0.1:{port}", database_url
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
            pytest.fail(f"uvicorn did not stop on SIGINT:\n{log.read_text()[-3000:]}")


def test_a_real_uvicorn_server_commits_signup_and_job_over_http(
    uvicorn_server: tuple[str, str],
) -> None:
    import httpx

    base_url, database_url = uvicorn_server
    # The socket listens already: requests wait in its backlog until the app has started.
    with httpx.Client(base_url=base_url, timeout=30) as client, JobQueue(database_url) as queue:
        assert client.get("/healthz").json() == {"status": "ok"}
        created = client.post("/signups", json={"email": "ada@example.com", "card": GOOD_CARD})
        assert created.status_code == 201, created.text
        # Committed before the response was sent (the session dependency's scope="function").
        assert queue.count_jobs(status="pending") == 1
        declined = client.post(
            "/signups", json={"email": "bob@example.com", "card": "4000000000000002"}
        )
        assert declined.status_code == 402, declined.text
        assert client.get("/signups/2").status_code == 404
        assert queue.count_jobs() == 1

        run_worker("examples.fastapi_app", database_url)
        assert queue.count_jobs(status="succeeded") == 1
        shown = client.get(f"/signups/{created.json()['id']}").json()
        assert shown == {"id": 1, "email": "ada@example.com", "welcome_mail_sent": True}


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)  # the async driver we ship
def test_an_async_session_enqueues_through_run_sync_in_its_transaction(jq: JobQueue) -> None:
    """docs/web-apps.md's recipe for `async def` endpoints with an AsyncSession."""
    import asyncio

    from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

    from jobqueue import job

    @job(name="tests.integrations.async_welcome")
    def welcome(email: str) -> None: ...

    handles: list[EnqueuedJob] = []

    async def signup(session: AsyncSession, email: str, *, fail: bool) -> None:
        async with session.begin():
            handles.append(
                await session.run_sync(lambda sync: welcome.using(session=sync).enqueue(email))
            )
            if fail:
                raise RuntimeError("declined")

    async def scenario() -> None:
        engine = create_async_engine(jq.database_url)
        try:
            async with AsyncSession(engine) as session:
                await signup(session, "ada@example.com", fail=False)
                with pytest.raises(RuntimeError):
                    await signup(session, "bob@example.com", fail=True)
        finally:
            await engine.dispose()

    asyncio.run(scenario())
    assert [row.args for row in jq.admin.list_jobs()] == [["ada@example.com"]]
    # The async engine cannot serve fetch()'s blocking read: a clear error, not MissingGreenlet.
    with pytest.raises(ValueError, match="async session"):
        handles[0].fetch()
    assert jq.get_job(handles[0].id) is not None
