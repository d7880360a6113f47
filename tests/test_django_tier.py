"""The Django tier (tests/django_tier against examples/django_site): Django 6 needs Python >=
3.12, so it runs in a virtualenv of its own under such an interpreter (pyenv's, or python3.12/
python3.13 on PATH), installed from this checkout with the ``django`` extra and pytest-django,
on SQLite, PostgreSQL and MariaDB (Django's MySQL backend runs on mysqlclient, built against
libmariadb-dev, which .ci/run installs). Without such an interpreter it skips, visibly; CI sets
JOBQUEUE_REQUIRE_DJANGO=1 so that it fails instead."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from backends import BackendUnavailable, create_database, required_backends

REPO = Path(__file__).resolve().parents[1]
VENV = REPO / ".venv-django"


def _interpreter() -> str | None:
    found = [shutil.which(name) for name in ("python3.13", "python3.12")]
    found += sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.1[23]*/bin/python3")))
    for candidate in filter(None, found):
        version = subprocess.run(
            [candidate, "-c", "import sys; print(sys.version_info >= (3, 12))"],
            capture_output=True,
            text=True,
        )
        if version.stdout.strip() == "True":
            return candidate
    return None


@pytest.fixture(scope="module")
def django_python() -> str:
    interpreter = _interpreter()
    if interpreter is None:
        if os.environ.get("JOBQUEUE_REQUIRE_DJANGO") == "1":
            pytest.fail("no Python >= 3.12 for the Django tier (JOBQUEUE_REQUIRE_DJANGO=1)")
        pytest.skip("the Django tier needs a Python >= 3.12 (Django 6); none was found")
    python = VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([interpreter, "-m", "venv", str(VENV)], check=True)
    install = subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "-q",
            "-e",
            f"{REPO}[postgres,mysql,django,due-work]",
            "due-work-harness[django]>=0.7,<0.8",
            "pytest>=8",
            "pytest-django>=4.9",
        ],
        capture_output=True,
        text=True,
    )
    assert install.returncode == 0, install.stdout[-3000:] + install.stderr[-3000:]
    return str(python)


def _mysqlclient(python: str) -> str | None:
    """Install mysqlclient (Django's MySQL driver, a C extension) into the tier's venv; the
    reason it cannot be, or None."""
    done = subprocess.run(
        [python, "-m", "pip", "install", "-q", "mysqlclient>=2.2.1"], capture_output=True, text=True
    )
    if done.returncode == 0:
        return None
    return (
        "mysqlclient cannot be built here (needs libmariadb-dev and pkg-config): "
        + (done.stderr.strip().splitlines() or ["no output"])[-1]
    )


@pytest.mark.parametrize("database", ["sqlite", "postgresql", "mysql"])
def test_the_django_tier(django_python: str, database: str, tmp_path: Path) -> None:
    if database != "sqlite":
        try:
            create_database(database, tmp_path).drop()  # is the server there?
        except BackendUnavailable as error:
            if database in required_backends():
                pytest.fail(str(error))
            pytest.skip(str(error))
    if database == "mysql" and (reason := _mysqlclient(django_python)) is not None:
        if database in required_backends():
            pytest.fail(reason)
        pytest.skip(reason)
    name = (
        str(tmp_path / "site.sqlite3") if database == "sqlite" else f"jq_dj_{uuid.uuid4().hex[:10]}"
    )
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO / "examples" / "django_site"),
        "SITE_DATABASE": database,
        "SITE_DATABASE_NAME": name,
    }
    env.pop("JOBQUEUE_DATABASE_URL", None)
    done = subprocess.run(
        [
            django_python,
            "-m",
            "pytest",
            "-p",
            "pytest_django",
            "--ds=site_config.settings",
            "--create-db",
            "-p",
            "no:cacheprovider",
            "-q",
            "tests/django_tier",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    print(done.stdout[-4000:])
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
    assert " passed" in done.stdout and " failed" not in done.stdout
