"""Prometheus metrics, read from the database at scrape time.

A collector rather than counters bumped in-process: every worker, supervisor and dashboard then
reports the same figures (the database's), whichever of them is scraped, and restarts do not
reset them. The totals come from the per-minute counters table, which is never pruned, so they
never go down when finished jobs are.

Used by the dashboard's ``/metrics`` and by ``jobrunner work --metrics-port``; needs
``prometheus-client`` (``pip install 'jobqueue[metrics]'``), imported only here.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from jobqueue.admin import Admin, QueueSummary, Stats
from jobqueue.queue import JobQueue
from jobqueue.schema import STATUSES, SUCCEEDED

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class JobQueueCollector(Collector):
    """Queue depths, latency, outcome totals and live processes of one :class:`JobQueue`."""

    def __init__(self, jobqueue: JobQueue) -> None:
        self.admin = Admin(jobqueue)

    def collect(self) -> Iterator[Metric]:
        summaries = self.admin.queues()
        counts = self.admin.job_counts()
        totals = self.admin.totals()
        # Queues that ever ran a job keep reporting zeros once empty: a series that vanished
        # would leave alerts on it stale instead of resolved.
        queues = sorted({s.queue for s in summaries} | {q for q, _ in counts} | set(totals))
        yield _jobs(queues, counts)
        yield from _queue_gauges(summaries)
        yield from _totals(totals)
        yield from _processes(Counter(process.kind for process in self.admin.processes()))


def _jobs(queues: list[str], counts: dict[tuple[str, str], int]) -> Metric:
    jobs = GaugeMetricFamily(
        "jobqueue_jobs",
        "Jobs in the table by queue and status (succeeded is not counted: see "
        "jobqueue_jobs_succeeded_total)",
        labels=["queue", "status"],
    )
    for queue in queues:
        for status in STATUSES:
            if status != SUCCEEDED:
                jobs.add_metric([queue, status], counts.get((queue, status), 0))
    return jobs


def _queue_gauges(summaries: list[QueueSummary]) -> Iterator[Metric]:
    latency = GaugeMetricFamily(
        "jobqueue_queue_latency_seconds",
        "Age of the oldest due pending job (0 when none is waiting)",
        labels=["queue"],
    )
    paused = GaugeMetricFamily(
        "jobqueue_queue_paused", "1 if an operator paused the queue", labels=["queue"]
    )
    for summary in summaries:
        latency.add_metric([summary.queue], summary.latency_seconds or 0.0)
        paused.add_metric([summary.queue], 1.0 if summary.paused else 0.0)
    yield latency
    yield paused


#: Outcome totals: (Stats attribute, metric name, help).
_TOTALS = (
    (
        "processed",
        "jobqueue_jobs_processed",
        "Jobs that reached a final outcome (succeeded, failed, discarded or expired)",
    ),
    ("succeeded", "jobqueue_jobs_succeeded", "Jobs that succeeded"),
    (
        "failed",
        "jobqueue_jobs_failed",
        "Jobs that failed for good (attempts exhausted or a permanent failure)",
    ),
    ("retried", "jobqueue_jobs_retried", "Failed attempts that were retried"),
    ("discarded", "jobqueue_jobs_discarded", "Jobs discarded by their own code"),
    ("expired", "jobqueue_jobs_expired", "Jobs not started by their expires_at"),
)


def _totals(totals: dict[str, Stats]) -> Iterator[Metric]:
    for attribute, name, documentation in _TOTALS:
        family = CounterMetricFamily(name, documentation, labels=["queue"])
        for queue, stats in totals.items():
            family.add_metric([queue], getattr(stats, attribute))
        yield family


def _processes(live: Counter[str]) -> Iterator[Metric]:
    workers = GaugeMetricFamily(
        "jobqueue_processes", "Live jobqueue processes by kind", labels=["kind"]
    )
    for kind in ("supervisor", "worker", *sorted(set(live) - {"supervisor", "worker"})):
        workers.add_metric([kind], live.get(kind, 0))
    yield workers
    yield GaugeMetricFamily(
        "jobqueue_workers", "Live worker processes", value=live.get("worker", 0)
    )


def registry_for(jobqueue: JobQueue) -> CollectorRegistry:
    """A registry holding only this queue's collector (not the process's default metrics)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(JobQueueCollector(jobqueue))
    return registry


def render(registry: CollectorRegistry) -> bytes:
    """The Prometheus text exposition of ``registry``."""
    return generate_latest(registry)


def serve(jobqueue: JobQueue, port: int, host: str = "127.0.0.1") -> None:
    """Serve ``/metrics`` on ``host:port`` from a daemon thread (``jobrunner work
    --metrics-port``). Loopback by default, like the dashboard: the figures name queues."""
    start_http_server(port, addr=host, registry=registry_for(jobqueue))
