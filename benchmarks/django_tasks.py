"""Django tasks: jobqueue's backend against django-tasks-db, through Django's public tasks API.

A hand-run benchmark, not part of ``python -m benchmarks`` or the tests. It needs Django 6 and
the reference database backend in the Django virtualenv (a bench-only tool, not a dependency
of jobqueue)::

    .venv-django/bin/pip install django-tasks-db
    .venv-django/bin/python benchmarks/django_tasks.py [--tasks N] [--backend sqlite|postgresql]

With no ``--backend`` it runs SQLite, then PostgreSQL (postgres@127.0.0.1:5432, trust auth).
For each database and each run, alternating the two systems (jobqueue, django-tasks-db,
jobqueue, ...), on a fresh database (SQLite file or PostgreSQL database ``jq_bench_dj_*``,
removed afterwards), migrated by the backend's own command:

1. start-up: enqueue 1 task, then time the backend's worker command, a real subprocess, until
   it exits having run it (process start, ``django.setup()``, one task, noticing it is done);
2. enqueue: enqueue 1 task untimed (the first connection), then N tasks, each
   ``noop.enqueue()`` in its own autocommit; tasks/s over the N;
3. processing: time the same worker command draining those N + 1 tasks. ``net`` is
   N / (drain time - start-up time), the rate with the start-up taken out; ``raw`` is
   (N + 1) / drain time.

Then every task enqueued is checked SUCCESSFUL with ``get_result``; a task that is not, or a
worker that exits non-zero, stops the benchmark with the command's last output lines.

The workers: ``manage.py jobrunner work --burst --processes 1 --threads 1`` (jobqueue) and
``manage.py db_worker --batch --no-startup-delay --no-reload`` (django-tasks-db: one process,
runs what is ready then exits; ``--no-startup-delay`` drops its random 0-1 s sleep at start,
which is there against a thundering herd, not work). The settings are
``benchmarks/django_bench/settings.py``, the task ``benchmarks.django_bench.noop_app.tasks.noop``.

``--conn-max-age`` sets Django's ``CONN_MAX_AGE`` for both (default 0, Django's own default:
a worker that closes stale connections around each task, as both do, reconnects per task if
the task, or the backend, used Django's connection). A ``PYTHONPATH`` given comes before the
repository on the workers' path, so ``PYTHONPATH=/path/to/checkout`` measures another jobqueue.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SITE = REPO / "benchmarks" / "django_bench"
SYSTEMS = ("jobqueue", "django-tasks-db")
DATABASES = ("sqlite", "postgresql")
PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"

#: manage.py arguments of each system's migrations and worker.
MIGRATE: dict[str, list[str]] = {
    "jobqueue": ["jobrunner", "migrate"],
    "django-tasks-db": ["migrate", "--verbosity", "0"],
}
WORKER: dict[str, list[str]] = {
    "jobqueue": ["jobrunner", "work", "--burst", "--processes", "1", "--threads", "1"],
    "django-tasks-db": ["db_worker", "--batch", "--no-startup-delay", "--no-reload"],
}
#: Longest any one command may take before the benchmark gives up (seconds).
TIMEOUT = 900.0


class BenchError(RuntimeError):
    """A step that failed: an error, never a number in the table."""


@dataclass(frozen=True)
class Run:
    """One run of one system on one database."""

    enqueue_rate: float  # tasks/s
    startup: float  # s to drain 1 task, start to exit
    drain: float  # s to drain N + 1 tasks, start to exit
    net_rate: float  # N / (drain - startup), tasks/s
    raw_rate: float  # (N + 1) / drain, tasks/s


@dataclass
class Scratch:
    """Where one run keeps its files, and its database's name."""

    system: str
    database: str
    name: str
    logs: Path
    conn_max_age: str

    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("JOBQUEUE_")}
        env.update(
            BENCH_DJ_SYSTEM=self.system,
            BENCH_DJ_DATABASE=self.database,
            BENCH_DJ_NAME=self.name,
            BENCH_DJ_CONN_MAX_AGE=self.conn_max_age,
            DJANGO_SETTINGS_MODULE="benchmarks.django_bench.settings",
            # The caller's PYTHONPATH first (a jobqueue checkout to measure), then the
            # repository, for benchmarks.django_bench.
            PYTHONPATH=os.pathsep.join(filter(None, [env.get("PYTHONPATH"), str(REPO)])),
        )
        return env

    def run(self, label: str, argv: Sequence[str]) -> tuple[float, str]:
        """Run ``argv`` in the benchmark site to its end; its seconds (start to exit) and
        its output. A non-zero exit or a timeout raises, with the output's last lines."""
        log = self.logs / f"{self.system}-{self.database}-{label}.log"
        with log.open("wb") as out:
            started = time.perf_counter()
            process = subprocess.Popen(
                list(argv),
                cwd=SITE,
                env=self.environment(),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            try:
                code = process.wait(timeout=TIMEOUT)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
                code = None
            seconds = time.perf_counter() - started
        output = log.read_text(errors="replace")
        if code != 0:
            tail = "\n".join(output.splitlines()[-30:])
            status = "timed out" if code is None else f"exited {code}"
            raise BenchError(
                f"{self.system} on {self.database}: {label} {status}: {' '.join(argv)}\n{tail}"
            )
        return seconds, output

    def manage(self, label: str, *arguments: str) -> tuple[float, str]:
        return self.run(label, [sys.executable, "manage.py", *arguments])

    def client(self, label: str, *arguments: str) -> dict[str, object]:
        _, output = self.run(
            label, [sys.executable, "-m", "benchmarks.django_bench.client", *arguments]
        )
        reply: dict[str, object] = json.loads(output.strip().splitlines()[-1])
        return reply


@contextlib.contextmanager
def fresh_database(database: str, system: str, run: int, workdir: Path) -> Iterator[str]:
    """A new empty database for one run (a SQLite file, or a PostgreSQL database), removed
    afterwards; its name."""
    tag = f"{system.replace('-', '_')}_{run}_{os.getpid()}"
    if database == "sqlite":
        folder = workdir / f"sqlite_{tag}"
        folder.mkdir()
        try:
            yield str(folder / "bench.sqlite3")
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return
    import psycopg

    name = f"jq_bench_dj_{tag}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def measure(
    system: str, database: str, tasks: int, run: int, workdir: Path, conn_max_age: str
) -> Run:
    with fresh_database(database, system, run, workdir) as name:
        scratch = Scratch(system, database, name, workdir, conn_max_age)
        ids = workdir / f"ids_{system}_{database}_{run}.txt"
        ids.unlink(missing_ok=True)
        scratch.manage("migrate", *MIGRATE[system])
        scratch.client("enqueue-1", "enqueue", "1", str(ids))
        startup, _ = scratch.manage("work-1", *WORKER[system])
        enqueued = scratch.client("enqueue-n", "enqueue", str(tasks), str(ids), "--warm-up")
        drain, _ = scratch.manage("work-n", *WORKER[system])
        checked = scratch.client("verify", "verify", str(ids))
        if checked.get("tasks") != tasks + 2:
            raise BenchError(f"{system} on {database}: expected {tasks + 2} ids, got {checked}")
    enqueue_seconds = float(str(enqueued["seconds"]))
    return Run(
        enqueue_rate=tasks / enqueue_seconds,
        startup=startup,
        drain=drain,
        net_rate=tasks / (drain - startup) if drain > startup else math.nan,
        raw_rate=(tasks + 1) / drain,
    )


def _cell(values: Sequence[float], unit: str, digits: int) -> str:
    """Median and every value; n/a for a net rate whose drain was no longer than start-up
    (too few tasks to see past the start-up's noise)."""

    def shown(value: float) -> str:
        return "n/a" if math.isnan(value) else f"{value:,.{digits}f}"

    known = [v for v in values if not math.isnan(v)]
    median = statistics.median(known) if known else math.nan
    return f"{shown(median)} {unit} ({', '.join(shown(v) for v in values)})"


def table(results: dict[tuple[str, str], list[Run]], tasks: int, conn_max_age: str) -> str:
    lines = [
        f"N = {tasks:,} no-op tasks, CONN_MAX_AGE = {conn_max_age}; "
        "median of {runs} (the runs in order)",
        "",
        "| database | system | enqueue, autocommit | worker start-up (1 task) "
        f"| drain {tasks + 1:,} tasks | processing, net | processing, raw |",
        "|---|---|---|---|---|---|---|",
    ]
    runs = 0
    for (database, system), found in results.items():
        runs = len(found)
        lines.append(
            f"| {database} | {system} "
            f"| {_cell([r.enqueue_rate for r in found], 'tasks/s', 0)} "
            f"| {_cell([r.startup for r in found], 's', 2)} "
            f"| {_cell([r.drain for r in found], 's', 2)} "
            f"| {_cell([r.net_rate for r in found], 'tasks/s', 0)} "
            f"| {_cell([r.raw_rate for r in found], 'tasks/s', 0)} |"
        )
    return "\n".join(lines).replace("{runs}", str(runs))


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def _load() -> str:
    """The 1-minute load average: other work on the machine shows in the numbers."""
    return f"{os.getloadavg()[0]:.2f}" if hasattr(os, "getloadavg") else "unknown"


def _max_age(value: str) -> str:
    if value == "none" or (value.isdigit() and int(value) >= 0):
        return value
    raise argparse.ArgumentTypeError("seconds (an integer >= 0) or none")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="benchmarks/django_tasks.py",
        description="Enqueue and processing rates of Django tasks on jobqueue's backend and "
        "on django-tasks-db, run alternately.",
    )
    parser.add_argument("--tasks", type=_positive, default=2000, help="N (default 2000)")
    parser.add_argument(
        "--backend", choices=DATABASES, action="append", help="database (default: both)"
    )
    parser.add_argument("--runs", type=_positive, default=3, help="runs per system (default 3)")
    parser.add_argument(
        "--conn-max-age",
        type=_max_age,
        default="0",
        metavar="SECONDS|none",
        help="Django's CONN_MAX_AGE for both systems (default 0, Django's default: "
        "connections closed after each task; none: persistent)",
    )
    args = parser.parse_args(argv)
    if importlib.util.find_spec("django_tasks_db") is None:
        print(
            "django-tasks-db is not installed: .venv-django/bin/pip install django-tasks-db",
            file=sys.stderr,
        )
        return 2
    databases: list[str] = args.backend or list(DATABASES)
    results: dict[tuple[str, str], list[Run]] = {}
    workdir = Path(tempfile.mkdtemp(prefix="jq_bench_dj_"))
    load_at_start = _load()
    try:
        for database in databases:
            for run in range(1, args.runs + 1):
                for system in SYSTEMS:
                    found = measure(system, database, args.tasks, run, workdir, args.conn_max_age)
                    results.setdefault((database, system), []).append(found)
                    print(
                        f"{database} run {run} {system}: enqueue {found.enqueue_rate:,.0f}/s, "
                        f"start-up {found.startup:.2f} s, drain {found.drain:.2f} s, "
                        f"net {found.net_rate:,.0f}/s",
                        flush=True,
                    )
    except BenchError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print()
    print(table(results, args.tasks, args.conn_max_age))
    print(f"\nload average (1 min) at start {load_at_start}, at end {_load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
