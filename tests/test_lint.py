"""ruff, mypy --strict and pyright are part of the suite (over the package and the shipped
migrations), so the one test command checks them too. The layers are checked in
test_architecture.py."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _tool(name: str) -> str:
    path = shutil.which(name, path=str(Path(sys.executable).parent))
    if path is None:
        pytest.fail(f"{name} is not installed in the test environment (pip install -e '.[dev]')")
    return path


@pytest.mark.parametrize(
    "command",
    [
        ["ruff", "check", "."],
        ["ruff", "format", "--check", "."],
        ["mypy", "jobqueue"],
        ["mypy", "alembic"],
        ["pyright"],  # [tool.pyright] in pyproject.toml: jobqueue and alembic
    ],
    ids=["ruff-check", "ruff-format", "mypy-strict", "mypy-strict-migrations", "pyright"],
)
def test_clean(command: list[str]) -> None:
    done = subprocess.run(
        [_tool(command[0]), *command[1:]], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-2000:]
