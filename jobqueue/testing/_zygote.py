"""``jobrunner`` commands in processes of their own, forked from one warm interpreter.

Every crash history ends with recovery, the real ``jobrunner work --burst``; started as a new
interpreter, each spent about 0.6 s importing SQLAlchemy, structlog and jobqueue before doing
anything, most of a history's time. This interpreter imports them once and forks a child per
command: the child sets the command's environment, directory and ``sys.path`` (what
``PYTHONPATH`` and ``python -m`` would have made them) and runs the module ``jobqueue`` as
``__main__`` with the command's arguments, as ``python -m jobqueue`` does (the ``jobrunner``
entry point); it imports the apps the command names and exits through ``os._exit`` as
``jobrunner`` does. Modules are named as on a command line, never imported into jobqueue.testing
(the CLI is the layer above it). Nothing else is inherited: this
interpreter never imports an app, connects to a database or configures logging.

Run as ``python -m jobqueue.testing._zygote``: one JSON request a line on standard input
(``argv``, ``env``, ``cwd``, ``paths``, ``output``), answered by ``{"pid": ...}`` once the child
runs and ``{"code": ...}`` once it exits. End of input ends it.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import json
import os
import runpy
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

#: Imported once, for every child: the command and the test databases' drivers (if installed).
WARM = ("jobqueue.cli.main", "jobqueue.cli.work", "psycopg", "pymysql")


def _child(request: dict[str, Any]) -> None:
    """Become the command: its environment, directory, path and output, then jobrunner."""
    try:
        os.environ.clear()
        os.environ.update(request["env"])
        os.chdir(request["cwd"])
        # As `python -m` in cwd with PYTHONPATH=paths: cwd first (in place of this
        # interpreter's own directory, "/"), then the paths.
        sys.path[0:1] = [request["cwd"], *request["paths"]]
        null = os.open(os.devnull, os.O_RDONLY)
        output = os.open(request["output"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(null, 0)
        os.dup2(output, 1)
        os.dup2(output, 2)
        sys.argv = list(request["argv"])
        runpy.run_module("jobqueue", run_name="__main__", alter_sys=True)
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stderr.flush()
        os._exit(70)  # only if jobrunner itself did not exit


def _answer(message: dict[str, int]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def serve() -> None:
    for name in WARM:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    for line in sys.stdin:
        request = json.loads(line)
        sys.stdout.flush()
        pid = os.fork()
        if pid == 0:
            _child(request)
        _answer({"pid": pid})
        _answer({"code": os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])})


class Forks:
    """The test's side: starts the zygote on first use and runs one command at a time."""

    def __init__(self) -> None:
        self._process: subprocess.Popen[bytes] | None = None
        self._buffer = b""
        self._lock = threading.Lock()

    def run(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        cwd: str,
        paths: Sequence[str],
        timeout: float,
    ) -> tuple[int, str]:
        """Run ``argv`` (``argv[0]`` is the program's name) forked from the zygote; returns its
        exit code and everything it wrote. A command still running after ``timeout`` seconds is
        killed and reported as ``TimeoutError``."""
        with self._lock, tempfile.TemporaryDirectory(prefix="jobrunner-") as directory:
            output = str(Path(directory) / "output")
            stdin = self._started()
            request = {"argv": list(argv), "env": dict(env), "cwd": cwd, "paths": list(paths)}
            stdin.write((json.dumps({**request, "output": output}) + "\n").encode())
            stdin.flush()
            pid = self._read(timeout)["pid"]
            try:
                code = self._read(timeout)["code"]
            except TimeoutError:
                os.kill(pid, signal.SIGKILL)
                self._read(timeout)
                raise
            return code, Path(output).read_text(errors="replace")

    def close(self) -> None:
        if self._process is not None and self._process.stdin is not None:
            self._process.stdin.close()
            self._process.wait()
            self._process = None

    def _started(self) -> IO[bytes]:
        if self._process is None:
            command = [sys.executable, "-m", __name__]
            self._process = subprocess.Popen(
                command, cwd="/", stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0
            )
            self._buffer = b""
            atexit.register(self.close)
        assert self._process.stdin is not None
        return self._process.stdin

    def _read(self, timeout: float) -> dict[str, int]:
        assert self._process is not None and self._process.stdout is not None
        fd, deadline = self._process.stdout.fileno(), time.monotonic() + timeout
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                raise TimeoutError(f"no answer from the jobrunner zygote in {timeout} s")
            chunk = os.read(fd, 4096)
            if not chunk:
                self._process = None
                raise RuntimeError("the jobrunner zygote exited")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        answer: dict[str, int] = json.loads(line)
        return answer


forks = Forks()


if __name__ == "__main__":
    serve()
