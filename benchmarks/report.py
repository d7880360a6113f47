"""The report: a table on the terminal, and one section of docs/performance.md per backend.

Each backend's section sits between two HTML comments, so a run on one backend replaces its
own section and leaves the others (and any prose around them) as they were; the three
backends can be run one after another, on different days if need be.
"""

from __future__ import annotations

import os
import platform
import re
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from benchmarks.results import Figure, Results, Table, fmt

TITLES = {"sqlite": "SQLite", "postgresql": "PostgreSQL", "mysql": "MariaDB / MySQL"}
ORDER = ("sqlite", "postgresql", "mysql")

INTRO = """\
# Performance

What jobqueue does on one small machine, measured by the harness in `benchmarks/` (issue 6),
next to comparable libraries on the same machine and database servers. Every figure is the
median of several runs, with the spread (slowest to fastest run) beside it; every run uses a
database of its own, created for it and dropped after it.

Reproduce a section with the command shown in it, after `pip install -e '.[bench]'` (the
peers and both database drivers). The PostgreSQL and MariaDB servers are the ones the test
suite uses (`JOBQUEUE_BENCH_POSTGRESQL_URL` and `JOBQUEUE_BENCH_MYSQL_URL` point elsewhere);
the harness creates and drops its own `jq_bench_*` databases there. For a quick look use
smaller sizes, `--jobs 2000 --claim-rows 50000 --memory-jobs 10000 --runs 1`, and
`--only processing,claim` to run some workloads. `--no-write` prints without touching this
file; a run replaces only its own backend's section.

## What is measured

- **enqueue, single**: `noop.enqueue()` in a loop, one transaction per job, as a web request
  enqueues, after 20 untimed calls (the first one creates the engine and checks the schema).
- **enqueue, batch**: `enqueue_many()` with 1,000 jobs per call, building the `JobCall`s
  included.
- **processing**: N no-op jobs enqueued beforehand, then the real command
  `jobrunner work --burst --app benchmarks.bench_jobs --processes P --threads 5`, timed from
  starting it to its exit (start-up, the drain, and the exit once nothing is left), default
  logging, its output read from a pipe and thrown away. A run that leaves any job not
  `succeeded` is an error, not a figure. SQLite runs at the default `synchronous=NORMAL` and
  with `--sqlite-synchronous FULL`. On PostgreSQL and MariaDB the table's planner statistics
  are gathered after the bulk insert (`ANALYZE`), as autovacuum and InnoDB do by themselves
  within a minute, so that every run gets the plan production gets.
- **latency**: one `jobrunner work` (not burst, 1 process x 5 threads), idle for 3 s so that
  its poll has backed off to the 1 s maximum; then probe jobs enqueued one at a time, 20 ms
  apart, each carrying the `time.time()` of its enqueue as its argument and appending the time
  it started to a file. Start minus enqueue: p50, p99, max. The first probe meets a fully
  backed-off poll (up to 1 s on SQLite and MariaDB; PostgreSQL wakes on NOTIFY); the later
  ones find a poll kept short by the flow of jobs. The max is the first kind, the p50 the
  second.
- **claim cost**: the worker's own `claims.claim_jobs` and `attempts.complete_jobs`, called in a
  loop on one connection, each transaction completing the previous batch and claiming the
  next, as the worker loop does. Batches of 10 (`--claim-batch`): what a worker with 5 threads
  claims once its jobs take 50 ms or more (its automatic prefetch is then at its minimum, 5);
  for no-op jobs the automatic prefetch claims up to 505 at a time, which hides a claim's cost
  that batches of 10 show. (a) a table holding only 10,000 due jobs; (b) the same plus
  1,000,000 succeeded and 100,000 future-scheduled rows (written with `INSERT ... SELECT` from
  a generated sequence). Statistics are gathered after the due jobs are enqueued, as for
  processing. The target is a claim time (b)/(a) <= 1.5.
  The query plan is the database's own EXPLAIN of the statements one claim sends, with the
  10,000 due jobs in table (b) (EXPLAIN ANALYZE on PostgreSQL, inside a transaction that is
  rolled back, for the rows each step really read).
- **memory**: `VmRSS` / `VmHWM` from `/proc/PID/status` of the worker process of
  `jobrunner work` (1 x 5), sampled every 0.25 s, while it runs 100,000 no-op jobs that
  arrive in waves of 10,000 (a long-running worker's steady flow, not one backlog).
- **peers** (`--peers`): the same workloads through each library's own API and worker
  command, their job tables analyzed after the prefill like ours: Huey's `SqliteHuey` on
  SQLite (its task returns a value, so that its result store records each completion, which
  is how the harness counts them); procrastinate and PgQueuer on PostgreSQL with `async def`
  no-op tasks (both run coroutines on their event loop; a plain function would first be
  handed to a thread). Their workers do not exit when the queue is empty, so the harness
  polls their tables every 25 ms and takes the time at which all N jobs had finished, then
  stops them: their shutdown is not counted, jobqueue's is. `ours/peer` is jobqueue's median
  rate divided by the peer's, for the jobqueue configuration named (above 1: jobqueue is
  faster).

The machine is small (2 cores) and was shared with other work (a test suite) while these
figures were taken: compare figures within one section, taken in one sitting, rather than
across sections, and read the spread. The load average before and after each sitting is
recorded with it.
"""


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


def _cpu() -> str:
    models: list[str] = []
    count = 0
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("processor"):
                    count += 1
                elif line.startswith("model name"):
                    models.append(line.split(":", 1)[1].strip())
    except OSError:
        return f"{os.cpu_count()} CPUs"
    names = ", ".join(sorted(set(models))) or platform.processor() or "unknown model"
    return f"{count} x {names}"


def _memory() -> str:
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemTotal:"):
                    return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB RAM"
    except OSError:
        pass
    return "RAM unknown"


def _os() -> str:
    name = platform.system()
    try:
        with open("/etc/os-release") as handle:
            for line in handle:
                if line.startswith("PRETTY_NAME="):
                    name = line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return f"{name}, kernel {platform.release()}"


def filesystem(path: Path) -> str:
    """The file system ``path`` is on (what SQLite's fsyncs cost depends on)."""
    best = ("", "unknown", "unknown")
    try:
        with open("/proc/mounts") as handle:
            for line in handle:
                device, mount, kind = line.split()[:3]
                if str(path.resolve()).startswith(mount) and len(mount) > len(best[0]):
                    best = (mount, device, kind)
    except OSError:
        pass
    return f"{best[2]} on {best[1]}"


def load_average() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.2f} (1 min) / {five:.2f} (5 min)"


def revision() -> str:
    """The jobqueue code measured: the commit, and whether the work tree had changes on top
    of it (the figures then belong to those changes too)."""
    from benchmarks.procs import REPO

    try:
        commit = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain", "--", "jobqueue", "alembic"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return f"{commit}, with uncommitted changes to jobqueue/" if dirty else commit


def machine(backend: str, server: str, workdir: Path) -> list[str]:
    """The lines that say where and with what the figures were taken."""
    drivers = {
        "sqlite": f"sqlite3 module, SQLite {sqlite3.sqlite_version}",
        "postgresql": f"psycopg {_version('psycopg')}",
        "mysql": f"PyMySQL {_version('PyMySQL')}",
    }
    lines = [
        f"CPU: {_cpu()} ({os.cpu_count()} usable)",
        f"Memory: {_memory()}",
        f"OS: {_os()}",
        f"Python {platform.python_version()}, SQLAlchemy {_version('SQLAlchemy')}, "
        f"driver {drivers[backend]}",
        f"jobqueue {_version('jobqueue')} at commit {revision()}",
        f"Database: {server}",
    ]
    if backend == "sqlite":
        lines.append(f"SQLite files: {filesystem(workdir)} (a temporary folder)")
    return lines


def _ratio(results: Results, figure: Figure) -> str:
    if figure.versus is None:
        return ""
    ours = results.find(figure.workload, "jobqueue", figure.versus)
    if ours is None:
        return ""
    ratio = ours.median / figure.median
    if not figure.higher_is_better:
        ratio = 1 / ratio
    return f"{ratio:.2f} (vs {figure.versus})"


def figures_table(results: Results) -> Table:
    rows = []
    for figure in results.figures:
        low, high = figure.spread
        rows.append(
            [
                figure.workload,
                figure.system,
                figure.config,
                fmt(figure.median, figure.unit),
                f"{fmt(low)}-{fmt(high)}" if len(figure.values) > 1 else "",
                str(len(figure.values)),
                _ratio(results, figure),
            ]
        )
    return Table(
        "Results",
        ["workload", "system", "configuration", "median", "spread", "runs", "ours/peer"],
        rows,
    )


def markdown_table(table: Table) -> str:
    out = [
        "| " + " | ".join(table.header) + " |",
        "|" + "|".join("---" for _ in table.header) + "|",
    ]
    out += [
        "| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in table.rows
    ]
    if table.note:
        out += ["", table.note]
    return "\n".join(out)


def text_table(table: Table) -> str:
    widths = [len(h) for h in table.header]
    for row in table.rows:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    lines = [table.title, "  ".join(h.ljust(w) for h, w in zip(table.header, widths, strict=True))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in table.rows]
    if table.note:
        lines.append(table.note)
    return "\n".join(lines)


def terminal(results: Results) -> str:
    parts = [text_table(figures_table(results))]
    parts += [text_table(table) for table in results.tables]
    parts += [f"{title}\n{body}" for title, body in results.texts]
    return "\n\n".join(parts)


def section(
    results: Results, *, command: str, context: list[str], started: datetime, loads: tuple[str, str]
) -> str:
    """The Markdown of one backend's section, markers included."""
    backend = results.backend
    lines = [
        f"<!-- benchmark:{backend}:begin -->",
        f"## {TITLES[backend]}",
        "",
        f"Taken {started:%Y-%m-%d %H:%M} UTC with:",
        "",
        "```sh",
        command,
        "```",
        "",
    ]
    lines += [f"- {line}" for line in context]
    if results.systems:
        peers = ", ".join(f"{name} {ver}" for name, ver in results.systems.items())
        lines.append(f"- Peers: {peers}")
    lines.append(f"- Load average before: {loads[0]}; after: {loads[1]}")
    lines += ["", markdown_table(figures_table(results))]
    for table in results.tables:
        lines += ["", f"### {table.title}", "", markdown_table(table)]
    for title, body in results.texts:
        lines += ["", f"### {title}", "", "```text", body, "```"]
    lines += ["", f"<!-- benchmark:{backend}:end -->"]
    return "\n".join(lines)


def update_document(path: Path, backend: str, text: str) -> None:
    """Put ``text`` in place of ``backend``'s section; keep everything else in the file."""
    document = path.read_text() if path.exists() else INTRO
    pattern = re.compile(
        rf"<!-- benchmark:{backend}:begin -->.*?<!-- benchmark:{backend}:end -->", re.DOTALL
    )
    if pattern.search(document):
        document = pattern.sub(lambda _: text, document)
    else:
        document = _insert_in_order(document, backend, text)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(document.rstrip() + "\n")


def _insert_in_order(document: str, backend: str, text: str) -> str:
    """A new section goes before the first section of a backend that comes later in
    :data:`ORDER`, or at the end."""
    for later in ORDER[ORDER.index(backend) + 1 :]:
        marker = f"<!-- benchmark:{later}:begin -->"
        if marker in document:
            return document.replace(marker, text + "\n\n" + marker, 1)
    return document.rstrip() + "\n\n" + text + "\n"


def now() -> datetime:
    return datetime.now(UTC)


def command_line() -> str:
    import shlex

    return "python -m benchmarks " + shlex.join(sys.argv[1:])
