"""Running the systems under test as real processes, the way a user runs them.

Output goes to a pipe that a thread reads and throws away (keeping the last lines for error
messages), so a chatty logger costs what it costs a user whose logs are collected, and a full
pipe never stalls a worker. Each command starts in a session of its own, so stopping it stops
its children too (and nothing else).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

#: The repository root: the benchmark job modules are imported from here.
REPO = Path(__file__).resolve().parents[1]


class BenchmarkError(RuntimeError):
    """A run that did not do what it was asked (a crash, a missed job, a deadline): an error,
    never a number in the report."""


def tool(name: str) -> str:
    """A console script installed next to this interpreter (the venv's ``jobrunner``, ...)."""
    found = shutil.which(name, path=str(Path(sys.executable).parent))
    if found is None:
        raise BenchmarkError(f"{name} is not installed here (pip install -e '.[bench]')")
    return found


def clean_environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The caller's environment without any JOBQUEUE_* setting, so every system runs with its
    defaults, plus the repository on PYTHONPATH so the benchmark job modules import."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBQUEUE_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env.update(extra or {})
    return env


@dataclass
class Running:
    """A started command whose output is being drained."""

    argv: Sequence[str]
    process: subprocess.Popen[bytes]
    started: float
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=40))
    _reader: threading.Thread | None = None

    @classmethod
    def start(cls, argv: Sequence[str], env: dict[str, str], cwd: Path = REPO) -> Running:
        started = time.perf_counter()
        process = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        running = cls(argv, process, started)
        running._reader = threading.Thread(target=running._drain, daemon=True)
        running._reader.start()
        return running

    def _drain(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.tail.append(line.decode(errors="replace").rstrip())

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait(self, timeout: float) -> int:
        """Wait for the exit; past ``timeout`` the process group is killed and it is an error."""
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise BenchmarkError(
                f"{' '.join(self.argv[:3])} did not finish within {timeout:g} s\n{self.output()}"
            ) from None
        if self._reader is not None:
            self._reader.join(timeout=5)
        return code

    def stop(self, grace: float = 15.0) -> int:
        """SIGTERM to the whole group (as Ctrl-C or ``docker stop`` would), SIGKILL if it has
        not exited after ``grace`` seconds."""
        if self.process.poll() is None:
            self._signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.kill()
        if self._reader is not None:
            self._reader.join(timeout=5)
        return self.process.returncode

    def kill(self) -> None:
        self._signal(signal.SIGKILL)
        self.process.wait()

    def _signal(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signum)

    def output(self) -> str:
        return "\n".join(self.tail)


def run_to_exit(argv: Sequence[str], env: dict[str, str], timeout: float) -> float:
    """Run a command that exits by itself; returns its wall-clock seconds, start to exit."""
    running = Running.start(argv, env)
    code = running.wait(timeout)
    elapsed = time.perf_counter() - running.started
    if code != 0:
        raise BenchmarkError(f"{' '.join(argv[:3])} exited with {code}\n{running.output()}")
    return elapsed


def run_until_done(
    argv: Sequence[str],
    env: dict[str, str],
    *,
    done: Callable[[], int],
    total: int,
    timeout: float,
    poll: float = 0.025,
) -> float:
    """Run a worker that never exits by itself until ``done()`` reports ``total`` finished
    jobs; returns the seconds from start to the poll that saw the last one, then stops it."""
    running = Running.start(argv, env)
    try:
        deadline = running.started + timeout
        while True:
            count = done()
            now = time.perf_counter()
            if count >= total:
                return now - running.started
            if running.process.poll() is not None:
                raise BenchmarkError(
                    f"{' '.join(argv[:3])} exited ({running.process.returncode}) after "
                    f"{count} of {total} jobs\n{running.output()}"
                )
            if now > deadline:
                raise BenchmarkError(
                    f"{' '.join(argv[:3])}: only {count} of {total} jobs done after "
                    f"{timeout:g} s\n{running.output()}"
                )
            time.sleep(poll)
    finally:
        running.stop()


def children(pid: int) -> list[int]:
    """Direct children of ``pid``, from /proc (the worker processes of a supervisor)."""
    found: list[int] = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                stat = handle.read()
        except OSError:
            continue
        # The command name is in parentheses and may contain spaces: split after it.
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 1 and int(fields[1]) == pid:
            found.append(int(entry))
    return sorted(found)


def memory_kib(pid: int) -> tuple[int, int] | None:
    """(VmRSS, VmHWM) of a live process in KiB, or None once it has exited."""
    values: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                key, _, rest = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    values[key] = int(rest.split()[0])
    except (OSError, ValueError):
        return None
    if len(values) < 2:
        return None  # a zombie has no memory lines
    return values["VmRSS"], values["VmHWM"]
