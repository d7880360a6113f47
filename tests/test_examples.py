"""Every file in examples/ runs, as a user would run it, against a freshly migrated database."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from jobqueue import JobQueue, migrations
from jobqueue.db import create_engine

EXAMPLES = sorted((Path(__file__).parent.parent / "examples").glob("*.py"))
SERVED = {"fastapi_app", "flask_app"}  # web apps: they serve until stopped


@pytest.mark.parametrize("example", EXAMPLES, ids=[path.stem for path in EXAMPLES])
def test_example_runs_and_enqueues(example: Path, tmp_path: Path) -> None:
    if example.stem in SERVED:
        pytest.skip("a web app: tests/test_integrations.py runs it over HTTP")
    url = f"sqlite:///{tmp_path / 'jobqueue.db'}"
    engine = create_engine(url)
    migrations.upgrade(engine)
    engine.dispose()
    env = {**os.environ, "JOBQUEUE_DATABASE_URL": url}
    done = subprocess.run(
        [sys.executable, str(example)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    with JobQueue(url) as queue:
        assert queue.count_jobs() > 0


def test_the_readme_s_first_command_runs_every_job_the_quickstart_enqueues(
    tmp_path: Path,
) -> None:
    """`python examples/quickstart.py` then `jobrunner work --app examples.quickstart --burst`:
    nothing the quickstart enqueued may be left behind."""
    repo = Path(__file__).parent.parent
    url = f"sqlite:///{tmp_path / 'jobqueue.db'}"
    env = {**os.environ, "JOBQUEUE_DATABASE_URL": url}
    for command in (
        [sys.executable, "-m", "jobqueue", "migrate"],
        [sys.executable, "examples/quickstart.py"],
        [sys.executable, "-m", "jobqueue", "work", "--app", "examples.quickstart", "--burst"],
    ):
        done = subprocess.run(
            command, env=env, cwd=repo, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
    with JobQueue(url) as queue:
        assert queue.count_jobs() == queue.count_jobs(status="succeeded") == 15
