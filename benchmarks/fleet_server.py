"""What the database server and the machine do while a fleet runs: CPU seconds from /proc,
the connections and what they wait on, and the server's own counters.

CPU is read from /proc rather than asked of the server, because the question is what a job
costs the machine the database runs on. Two figures, since this server is shared with other
work (a test suite, other databases):

- **server**: every process of the server. PostgreSQL forks a process per connection, and a
  backend that exits takes its counters with it, except into its parent's ``cutime`` /
  ``cstime`` once the postmaster has reaped it; so it is the live ``postgres`` processes plus
  the postmaster's reaped children. MariaDB is one process (``mariadbd``), whose counters
  include threads that have ended.
- **own**: only the connections to this run's database (PostgreSQL backends by pid from
  ``pg_stat_activity``; MariaDB threads by ``TID`` from ``information_schema.processlist``, read
  from ``/proc/<mariadbd>/task/<tid>``). It leaves out the server's background work (WAL
  writer, checkpointer, InnoDB's purge and log flush), so it is a lower bound, and it cannot
  see other people's queries, so it is the figure that stays honest on a shared server.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy import Connection, func, select, text
from sqlalchemy import create_engine as sa_create_engine

from benchmarks.databases import Database
from jobqueue.schema import job_stats

TICK = os.sysconf("SC_CLK_TCK")
SERVER_COMMANDS = {"postgresql": "postgres", "mysql": "mariadbd"}


@dataclass(frozen=True)
class Proc:
    """One line of /proc/<pid>/stat, the fields used here; CPU in seconds."""

    command: str
    parent: int
    cpu: float
    reaped_children_cpu: float


def _stat(path: str) -> Proc | None:
    try:
        with open(path) as handle:
            stat = handle.read()
    except OSError:
        return None
    command = stat[stat.find("(") + 1 : stat.rfind(")")]
    # The command name is in parentheses and may contain spaces: split after it.
    fields = stat[stat.rfind(")") + 2 :].split()
    utime, stime, cutime, cstime = (int(value) for value in fields[11:15])
    return Proc(command, int(fields[1]), (utime + stime) / TICK, (cutime + cstime) / TICK)


def scan() -> dict[int, Proc]:
    """Every process on the machine, one pass over /proc (a few ms)."""
    found: dict[int, Proc] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (proc := _stat(f"/proc/{entry}/stat")) is not None:
            found[int(entry)] = proc
    return found


def server_cpu(procs: dict[int, Proc], backend: str) -> float:
    """CPU seconds the whole server has used since it started (see the module's docstring)."""
    command = SERVER_COMMANDS[backend]
    total = 0.0
    for proc in procs.values():
        if proc.command != command:
            continue
        total += proc.cpu
        parent = procs.get(proc.parent)
        if backend == "postgresql" and (parent is None or parent.command != command):
            total += proc.reaped_children_cpu  # the postmaster: backends that have exited
    return total


def tree_cpu(procs: dict[int, Proc], roots: list[int]) -> float:
    """CPU seconds of each root (a supervisor), its children (its workers) and the children
    it has reaped: what the fleet itself costs."""
    total = 0.0
    for pid, proc in procs.items():
        if pid in roots:
            total += proc.cpu + proc.reaped_children_cpu
        elif proc.parent in roots:
            total += proc.cpu
    return total


def machine_jiffies() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine from /proc/stat; idle and iowait are
    not busy."""
    with open("/proc/stat") as handle:
        values = [int(v) for v in handle.readline().split()[1:9]]
    total = sum(values)
    return (total - values[3] - values[4]) / TICK, total / TICK


@dataclass
class Sample:
    """Everything CPU-related at one instant; differences of two give a window's costs."""

    server: float
    own: dict[int, float]
    #: Whether a connection first seen in a later sample started from zero CPU: true of a
    #: PostgreSQL backend (a new process), not of a MariaDB thread, which its thread cache
    #: hands from one connection to the next with its counters.
    own_fresh: bool
    fleet: float
    busy: float
    total: float


@dataclass
class ServerProbe:
    """One monitoring connection (autocommit) to the run's database, kept for the whole run
    so that polling does not open connections of its own."""

    database: Database
    activity: Counter[str] = field(default_factory=Counter)
    connection_counts: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.engine = sa_create_engine(self.database.url, isolation_level="AUTOCOMMIT")
        self.connection: Connection = self.engine.connect()
        self.backend = self.database.backend
        self.server_pid = self._server_pid()

    def close(self) -> None:
        """Before the database is dropped, which a connection still open would block."""
        self.connection.close()
        self.engine.dispose()

    def _server_pid(self) -> int:
        """The mariadbd process whose threads are the connections (0 on PostgreSQL)."""
        if self.backend != "mysql":
            return 0
        for pid, proc in scan().items():
            if proc.command == SERVER_COMMANDS["mysql"]:
                return pid
        raise RuntimeError("no mariadbd process on this machine: its CPU cannot be measured")

    def succeeded(self) -> int:
        """Jobs succeeded so far, from the per-minute counters (a handful of rows, so polling
        it every 50 ms costs the server next to nothing, unlike a count over ``job_queue``)."""
        total = self.connection.execute(select(func.sum(job_stats.c.succeeded))).scalar()
        return int(total or 0)

    def _own_threads(self) -> list[int]:
        if self.backend == "postgresql":
            query = (
                "SELECT pid FROM pg_stat_activity WHERE datname = :db AND pid <> pg_backend_pid()"
            )
        else:
            query = (
                "SELECT TID FROM information_schema.processlist "
                "WHERE DB = :db AND ID <> CONNECTION_ID()"
            )
        rows = self.connection.execute(text(query), {"db": self.database.name})
        return [int(row[0]) for row in rows]

    def _own_cpu(self, procs: dict[int, Proc]) -> dict[int, float]:
        own: dict[int, float] = {}
        for pid in self._own_threads():
            if self.backend == "postgresql":
                proc = procs.get(pid)
            else:
                proc = _stat(f"/proc/{self.server_pid}/task/{pid}/stat")
            if proc is not None:
                own[pid] = proc.cpu
        return own

    def sample(self, fleet_roots: list[int]) -> Sample:
        """Server, own connections, fleet and machine CPU at one instant (one /proc pass)."""
        procs = scan()
        busy, total = machine_jiffies()
        return Sample(
            server=server_cpu(procs, self.backend),
            own=self._own_cpu(procs),
            own_fresh=self.backend == "postgresql",
            fleet=tree_cpu(procs, fleet_roots),
            busy=busy,
            total=total,
        )

    def look(self) -> None:
        """One look at the run's connections: how many, and what each is doing (PostgreSQL:
        state and wait event type, ``Lock`` being a row or table lock wait; MariaDB: command
        and state). Counted over all looks, so the shares say where connections spend time."""
        if self.backend == "postgresql":
            query = (
                "SELECT state, wait_event_type, count(*) FROM pg_stat_activity "
                "WHERE datname = :db AND pid <> pg_backend_pid() GROUP BY 1, 2"
            )
        else:
            query = (
                "SELECT COMMAND, STATE, count(*) FROM information_schema.processlist "
                "WHERE DB = :db AND ID <> CONNECTION_ID() GROUP BY 1, 2"
            )
        rows = self.connection.execute(text(query), {"db": self.database.name}).all()
        self.connection_counts.append(sum(int(row[2]) for row in rows))
        for first, second, count in rows:
            self.activity[f"{first or '-'}/{second or '-'}"] += int(count)

    def counters(self) -> dict[str, int]:
        """The server's cumulative counters that say how the run's transactions went.
        PostgreSQL: this database's row of ``pg_stat_database`` (commits, rollbacks,
        deadlocks; flushed by each backend at the latest when it exits, so read them after
        the fleet has stopped). MariaDB: global status, the whole server's (shared with
        anything else running on it): InnoDB row lock waits and their time, deadlocks."""
        if self.backend == "postgresql":
            row = self.connection.execute(
                text(
                    "SELECT xact_commit, xact_rollback, deadlocks, tup_updated, tup_inserted "
                    "FROM pg_stat_database WHERE datname = :db"
                ),
                {"db": self.database.name},
            ).first()
            names = ("xact_commit", "xact_rollback", "deadlocks", "tup_updated", "tup_inserted")
            return {n: int(v or 0) for n, v in zip(names, row or (), strict=False)}
        rows = self.connection.execute(
            text(
                "SHOW GLOBAL STATUS WHERE Variable_name IN ('Innodb_row_lock_waits', "
                "'Innodb_row_lock_time', 'Innodb_deadlocks', 'Com_commit', 'Com_rollback')"
            )
        ).all()
        return {str(name): int(value) for name, value in rows}


def costs(first: Sample, last: Sample, jobs: int, seconds: float) -> dict[str, float]:
    """CPU seconds per 1,000 jobs between two samples, and the cores each side used."""
    own = sum(
        cpu - first.own.get(pid, 0.0)
        for pid, cpu in last.own.items()
        if pid in first.own or last.own_fresh
    )
    server = last.server - first.server
    fleet = last.fleet - first.fleet
    busy = last.busy - first.busy
    return {
        "db_cpu_s_per_1k": 1000 * server / jobs,
        "db_own_cpu_s_per_1k": 1000 * own / jobs,
        "fleet_cpu_s_per_1k": 1000 * fleet / jobs,
        "db_cores": server / seconds,
        "db_own_cores": own / seconds,
        "fleet_cores": fleet / seconds,
        "machine_cores_busy": busy / seconds,
        "machine_busy_fraction": busy / (last.total - first.total),
    }
