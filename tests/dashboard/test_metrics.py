"""``/metrics`` in the Prometheus text format, on every backend, and ``jobrunner work
--metrics-port`` serving the same figures without the dashboard."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from jobqueue import JobCall, JobQueue, job
from jobqueue.runtime import lifecycle
from jobqueue.testing import drain

from browser import free_port
from workers import wait_until


@job(name="metrics.ok")
def ok() -> None:
    """Succeeds."""


@job(name="metrics.broken", max_attempts=1)
def broken() -> None:
    raise RuntimeError("broken")


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample as {(name, sorted labels): value}."""
    found: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(found: dict[Any, float], name: str, **labels: str) -> float:
    return found[(name, tuple(sorted(labels.items())))]


@pytest.mark.backend
def test_metrics_report_jobs_latency_totals_and_processes(jq: JobQueue, client: TestClient) -> None:
    jq.enqueue_many([JobCall("metrics.ok", queue="mail") for _ in range(3)])
    jq.enqueue_many([JobCall("metrics.broken", queue="mail", max_attempts=1)])
    drain(jq)
    waiting = datetime.now(UTC) - timedelta(seconds=90)
    jq.enqueue_many([JobCall("metrics.ok", queue="images", scheduled_for=waiting)])
    jq.admin.pause("images")
    with jq.transaction() as connection:
        lifecycle.register(connection, process_id="01METRICSWORKER00000000000", kind="worker")

    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    found = samples(response.text)
    assert all(name.startswith("jobqueue_") for name, _ in found)
    assert value(found, "jobqueue_jobs", queue="mail", status="failed") == 1
    assert value(found, "jobqueue_jobs", queue="images", status="pending") == 1
    assert value(found, "jobqueue_jobs", queue="mail", status="pending") == 0
    assert 90 <= value(found, "jobqueue_queue_latency_seconds", queue="images") < 200
    assert value(found, "jobqueue_queue_paused", queue="images") == 1
    assert value(found, "jobqueue_jobs_processed_total", queue="mail") == 4
    assert value(found, "jobqueue_jobs_succeeded_total", queue="mail") == 3
    assert value(found, "jobqueue_jobs_failed_total", queue="mail") == 1
    assert value(found, "jobqueue_workers") == 1
    assert value(found, "jobqueue_processes", kind="worker") == 1


@pytest.mark.backend
def test_totals_never_go_down_when_jobs_are_pruned(jq: JobQueue, client: TestClient) -> None:
    jq.enqueue_many([JobCall("metrics.ok") for _ in range(5)])
    jq.enqueue_many([JobCall("metrics.broken", max_attempts=1) for _ in range(2)])
    drain(jq)
    before = samples(client.get("/metrics").text)
    assert jq.admin.prune(status="succeeded", older_than=timedelta(0)) == 5
    assert jq.admin.prune(status="failed", older_than=timedelta(0)) == 2
    assert jq.count_jobs() == 0
    after = samples(client.get("/metrics").text)
    for name in ("processed", "succeeded", "failed"):
        metric = f"jobqueue_jobs_{name}_total"
        assert value(after, metric, queue="default") == value(before, metric, queue="default")
    assert value(after, "jobqueue_jobs_processed_total", queue="default") == 7
    assert value(before, "jobqueue_jobs", queue="default", status="failed") == 2
    assert value(after, "jobqueue_jobs", queue="default", status="failed") == 0


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_jobrunner_work_serves_metrics_without_the_dashboard(
    jq: JobQueue, work: Any, ledger: Any
) -> None:
    port = free_port()
    runner = work("--metrics-port", str(port), "--processes", "1")
    url = f"http://127.0.0.1:{port}/metrics"

    def live_worker() -> bool:
        assert runner.process.poll() is None, runner.output()
        try:
            found = samples(httpx.get(url, timeout=2).text)
        except httpx.TransportError:
            return False
        return value(found, "jobqueue_workers") == 1

    wait_until(live_worker, 30, "/metrics to report one live worker")
    jq.enqueue_many([JobCall("ledger.record", args=("m",), queue="metrics")])
    wait_until(
        lambda: (
            ("jobqueue_jobs_processed_total", (("queue", "metrics"),))
            in samples(httpx.get(url, timeout=2).text)
        ),
        30,
        "the worker's outcome in the totals",
    )
    found = samples(httpx.get(url, timeout=2).text)
    assert value(found, "jobqueue_jobs_succeeded_total", queue="metrics") == 1
    assert value(found, "jobqueue_processes", kind="supervisor") == 1
