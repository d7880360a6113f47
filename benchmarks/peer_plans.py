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
        results.systems.update(peer.listed())
        if settings.wants("enqueue"):
            plans += _pg_enqueue_plans(settings, results, peer)
        if settings.wants("processing"):
            plans += _pg_processing_plans(settings, results, peer)
    return plans


def _pg_enqueue_plans(settings: BenchSettings, results: Results, peer: PgPeer) -> list[Plan]:
    """Its single and its bulk enqueue, each checked afterwards for the jobs it should have
    queued (warm-up included), so a silently failed insert cannot pass for a fast one."""

    def single(database: Database) -> float:
        rate = peer.enqueue_single(database.libpq_dsn, settings.single)
        _expect(peer, database, peer.queued_sql(), settings.single + WARMUP_CALLS)
        return rate

    def batch(database: Database) -> float:
        dsn = database.libpq_dsn
        rate = peer.enqueue_batch(dsn, settings.batch_total, settings.batch_size)
        _expect(peer, database, peer.queued_sql(), settings.batch_total + 1)
        return rate

    per_call = f"{settings.batch_size:,} per call"
    single_figure = Figure(
        "enqueue, single", peer.system, peer.single_label, "jobs/s", [], versus="enqueue()"
    )
    batch_figure = Figure(
        "enqueue, batch",
        peer.system,
        f"{peer.batch_label}, {per_call}",
        "jobs/s",
        [],
        versus=f"enqueue_many(), {per_call}",
    )
    return [
        Plan(results.add(single_figure), _in_fresh_database(settings, peer, single)),
        Plan(results.add(batch_figure), _in_fresh_database(settings, peer, batch)),
    ]


def _pg_processing_plans(settings: BenchSettings, results: Results, peer: PgPeer) -> list[Plan]:
    plans: list[Plan] = []
    for config in peer.worker_configs():

        def process(database: Database, c: WorkerConfig = config) -> float:
            return peer.processing(database, settings.jobs, c, settings.timeout)

        figure = Figure(
            f"processing {settings.jobs:,} jobs",
            peer.system,
            config.label,
            "jobs/s",
            [],
            versus="1 process x 5 threads",
        )
        plans.append(Plan(results.add(figure), _in_fresh_database(settings, peer, process)))
    return plans


def _expect(peer: PgPeer, database: Database, sql: str, expected: int) -> None:
    found = peer.count(database.libpq_dsn, sql)
    if found != expected:
        raise BenchmarkError(f"{peer.system}: expected {expected} queued jobs, found {found}")
