"""jobqueue is typed end to end for its users: ``py.typed`` ships, and a user module's job
calls (``@job`` functions, ``Job`` classes, ``using(...)``) are checked against the job's own
parameters by ``mypy --strict`` and ``pyright`` in strict mode.

tests/typing_cases/user_calls.py marks each call a checker must reject with a comment starting
"wrong"; each checker must report an error on exactly those lines: none on the correct
calls, and every wrong one caught.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CASES = ROOT / "tests" / "typing_cases" / "user_calls.py"
BIN = Path(sys.executable).parent


def wrong_lines() -> set[int]:
    lines = CASES.read_text().splitlines()
    return {number for number, line in enumerate(lines, 1) if "# wrong:" in line}


def test_the_package_ships_its_type_marker() -> None:
    assert (ROOT / "jobqueue" / "py.typed").is_file()


def test_mypy_strict_accepts_the_right_calls_and_reports_every_wrong_one(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            str(BIN / "mypy"),
            "--strict",
            "--no-incremental",
            "--cache-dir",
            str(tmp_path),
            "--show-error-codes",
            str(CASES),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    reported = {
        int(match.group(1)) for match in re.finditer(r"user_calls\.py:(\d+): error:", done.stdout)
    }
    expected = wrong_lines()
    assert len(expected) >= 20
    assert reported - expected == set(), f"errors on correct calls:\n{done.stdout}"
    assert expected - reported == set(), f"wrong calls not caught:\n{done.stdout}"


def test_pyright_strict_accepts_the_right_calls_and_reports_every_wrong_one(
    tmp_path: Path,
) -> None:
    (tmp_path / CASES.name).write_text(CASES.read_text())  # include paths must be relative
    config = {
        "include": [CASES.name],
        "typeCheckingMode": "strict",
        "pythonVersion": "3.11",
        "pythonPlatform": "Linux",
        "venvPath": str(ROOT),
        "venv": ".venv",
        "extraPaths": [str(ROOT)],
    }
    (tmp_path / "pyrightconfig.json").write_text(json.dumps(config))
    pyright = BIN / "pyright"
    if not pyright.exists():
        pytest.fail("pyright is not installed in the test environment (the dev extra has it)")
    done = subprocess.run(
        [str(pyright), "--outputjson", "--project", str(tmp_path / "pyrightconfig.json")],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    report = json.loads(done.stdout)
    reported = {
        diagnostic["range"]["start"]["line"] + 1
        for diagnostic in report["generalDiagnostics"]
        if diagnostic["severity"] == "error"
    }
    expected = wrong_lines()
    messages = "\n".join(
        f"{d['range']['start']['line'] + 1}: {d['message']}" for d in report["generalDiagnostics"]
    )
    assert reported - expected == set(), f"errors on correct calls:\n{messages}"
    assert expected - reported == set(), f"wrong calls not caught:\n{messages}"
