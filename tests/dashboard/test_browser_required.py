"""Without Chromium the browser tests skip with the reason, unless JOBQUEUE_REQUIRE_BROWSER=1
(as in .ci/run) turns that into a failure: checked by running one of them in a child pytest
with the browser pointed at a path that does not exist."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
PYTEST = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rs", "-q"]


def run_browser_test(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*PYTEST, str(HERE / "test_browser.py"), "-k", "script_in_arguments"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=HERE.parents[1],
        env={**os.environ, "JOBQUEUE_CHROMIUM": str(tmp_path / "no-chromium"), **env},
    )


@pytest.mark.parametrize("required", ["", "1"], ids=["optional", "required"])
def test_a_missing_browser_skips_or_fails(tmp_path: Path, required: str) -> None:
    done = run_browser_test(tmp_path, JOBQUEUE_REQUIRE_BROWSER=required)
    assert f"no Chromium at {tmp_path / 'no-chromium'}" in done.stdout, done.stdout
    if required:
        assert done.returncode == 1 and "1 error" in done.stdout, done.stdout
        assert "required by JOBQUEUE_REQUIRE_BROWSER=1" in done.stdout
    else:
        assert done.returncode == 0 and "1 skipped" in done.stdout, done.stdout
