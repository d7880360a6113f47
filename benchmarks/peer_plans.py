"""The peers' measurements, as plans next to jobqueue's, each naming the jobqueue figure it
is compared with (``versus``)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack

from benchmarks import peers_huey
from benchmarks.databases import Database, fresh_database
from benchmarks.peers_pg import PEERS, WARMUP_CALLS, PgPeer, WorkerConfig
from benchmarks.procs import BenchmarkError
from benchmarks.results import Figure, Results
from benchmarks.runner import Plan
from benchmarks.settings import BenchSettings

#: Huey consumer configurations: (thread workers, synchronous, what it is).
HUEY_CONFIGS = (
    (1, "FULL", "huey_consumer -w 1 -k thread (its default), synchronous=FULL (its default)"),
    (5, "FULL", "huey_consumer -w 5 -k thread, synchronous=FULL (its default)"),
    (1, "NORMAL", "huey_consumer -w 1 -k thread, synchronous=NORMAL"),
    (5, "NORMAL", "huey_consumer -w 5 -k thread, synchronous=NORMAL"),
)


def huey_plans(settings: BenchSettings, results: Results, cleanup: ExitStack) -> list[Plan]:
    system = peers_huey.SYSTEM
    results.systems[system.split()[0]] = system.split()[1]
    plans: list[Plan] = []
    if settings.wants("enqueue"):
        for synchronous, versus in (
            ("FULL", "enqueue(), synchronous=FULL"),
            ("NORMAL", "enqueue()"),
        ):
            default = " (its default)" if synchronous == "FULL" else ""
            figure = Figure(
                "enqueue, single",
                system,
                f"task() call, synchronous={synchronous}{default}",
                "jobs/s",
                [],
                versus=versus,
            )

            def single(s: str = synchronous) -> float:
                return peers_huey.enqueue_single(settings.workdir, settings.single, s)

            plans.append(Plan(results.add(figure), single))
    if settings.wants("processing"):
        template = peers_huey.make_template(settings.workdir, settings.jobs)
        cleanup.callback(peers_huey.remove_template, template)
        for workers, synchronous, label in HUEY_CONFIGS:
            figure = Figure(
                f"processing {settings.jobs:,} jobs",
                system,
                label,
                "jobs/s",
                [],
                versus=f"1 process x 5 threads, synchronous={synchronous}",
            )

            def process(w: int = workers, s: str = synchronous) -> float:
                return peers_huey.processing(
                    template, settings.jobs, workers=w, synchronous=s, timeout=settings.timeout
                )

            plans.append(Plan(results.add(figure), process))
    return plans


def _in_fresh_database(
    settings: BenchSettings, peer: PgPeer, body: Callable[[Database], float]
) -> Callable[[], float]:
    def measure() -> float:
        with fresh_database(settings.backend, settings.workdir, migrate=False) as database:
            peer.install(database.libpq_dsn)
            return body(database)

    return measure


def pg_plans(settings: BenchSettings, results: Results) -> list[Plan]:
    plans: list[Plan] = []
    for peer_class in PEERS:
        peer = peer_class()
        name, version = peer.system.split()
        results.systems[name] = version
        if settings.wants("enqueue"):

            def single(database: Database, p: PgPeer = peer) -> float:
                rate = p.enqueue_single(database.libpq_dsn, settings.single)
                _expect(p, database, p.queued_sql(), settings.single + WARMUP_CALLS)
                return rate

            def batch(database: Database, p: PgPeer = peer) -> float:
                dsn = database.libpq_dsn
                rate = p.enqueue_batch(dsn, settings.batch_total, settings.batch_size)
                _expect(p, database, p.queued_sql(), settings.batch_total + 1)
                return rate

            single_label, batch_label = (
                ("defer()", "batch_defer()")
                if name == "procrastinate"
                else ("enqueue(name, payload)", "enqueue(lists)")
            )
            plans.append(
                Plan(
                    results.add(
                        Figure(
                            "enqueue, single",
                            peer.system,
                            single_label,
                            "jobs/s",
                            [],
                            versus="enqueue()",
                        )
                    ),
                    _in_fresh_database(settings, peer, single),
                )
            )
            plans.append(
                Plan(
                    results.add(
                        Figure(
                            "enqueue, batch",
                            peer.system,
                            f"{batch_label}, {settings.batch_size:,} per call",
                            "jobs/s",
                            [],
                            versus=f"enqueue_many(), {settings.batch_size:,} per call",
                        )
                    ),
                    _in_fresh_database(settings, peer, batch),
                )
            )
        if settings.wants("processing"):
            for config in peer.worker_configs():

                def process(
                    database: Database, p: PgPeer = peer, c: WorkerConfig = config
                ) -> float:
                    return p.processing(database, settings.jobs, c, settings.timeout)

                plans.append(
                    Plan(
                        results.add(
                            Figure(
                                f"processing {settings.jobs:,} jobs",
                                peer.system,
                                config.label,
                                "jobs/s",
                                [],
                                versus="1 process x 5 threads",
                            )
                        ),
                        _in_fresh_database(settings, peer, process),
                    )
                )
    return plans


def _expect(peer: PgPeer, database: Database, sql: str, expected: int) -> None:
    found = peer.count(database.libpq_dsn, sql)
    if found != expected:
        raise BenchmarkError(f"{peer.system}: expected {expected} queued jobs, found {found}")
