"""`pip install <repo>` into a fresh virtualenv outside the repository, then `jobrunner migrate`
and the quickstart, exactly as a new user would."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from jobqueue.schema import SCHEMA_REVISION

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_installed_package_migrates_and_enqueues(tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", str(REPO)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert install.returncode == 0, install.stderr[-3000:]
    work = tmp_path / "app"
    work.mkdir()
    clean_env = {"PATH": f"{env_dir / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path)}
    migrate = subprocess.run(
        [str(env_dir / "bin" / "jobrunner"), "migrate"],
        cwd=work,
        env=clean_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert migrate.returncode == 0, migrate.stderr
    assert (work / "jobqueue.db").is_file()
    # The installed package, not the repository, must be what runs.
    where = subprocess.run(
        [
            str(python),
            "-c",
            "import jobqueue, jobqueue.migrations as m; print(m.script_location())",
        ],
        cwd=work,
        env=clean_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert str(env_dir) in where.stdout, where.stdout + where.stderr
    quickstart = subprocess.run(
        [str(python), str(REPO / "examples" / "quickstart.py")],
        cwd=work,
        env=clean_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert quickstart.returncode == 0, quickstart.stderr
    with sqlite3.connect(work / "jobqueue.db") as db:
        count = db.execute("SELECT count(*) FROM job_queue").fetchone()[0]
        version = db.execute("SELECT version_num FROM jobqueue_alembic_version").fetchone()[0]
    assert count == 15
    assert version == SCHEMA_REVISION
    assert sys.version_info >= (3, 11)
