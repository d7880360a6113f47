"""OpenTelemetry across a real worker process: the span of each attempt continues the trace of
the code that enqueued the job, with the messaging attributes, and a failure is recorded on
the span. Without opentelemetry installed, nothing of it is imported and jobs run as ever.

The producer runs in a subprocess of its own with the SDK's in-memory exporter (a tracer
provider is global and set once per process, and the test process must stay untraced); the
worker's spans come from tracing_jobs.py's exporter."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from jobqueue import JobQueue
from jobqueue.schema import FAILED, SUCCEEDED

from workers import HERE, status

pytest.importorskip("opentelemetry.sdk", reason="the dev extra installs opentelemetry-sdk")

PRODUCER = textwrap.dedent(
    """
    import json, sys
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from jobqueue import JobQueue
    import tracing_jobs

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    jq = JobQueue(sys.argv[1])
    with trace.get_tracer("app").start_as_current_span("POST /signups"):
        ok = tracing_jobs.ok.using(jobqueue=jq).enqueue()
        fails = tracing_jobs.fails.using(jobqueue=jq).enqueue()
    spans = [tracing_jobs.span_record(span) for span in exporter.get_finished_spans()]
    print(json.dumps({"ok": ok.id, "fails": fails.id, "spans": spans}))
    """
)


def test_an_attempts_span_continues_the_enqueuers_trace(
    jq: JobQueue, work, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    produced = subprocess.run(
        [sys.executable, "-c", PRODUCER, jq.database_url],
        cwd=HERE,
        capture_output=True,
        text=True,
    )
    assert produced.returncode == 0, produced.stderr[-3000:]
    producer = json.loads(produced.stdout)
    request = next(s for s in producer["spans"] if s["name"] == "POST /signups")
    sends = [s for s in producer["spans"] if s["name"] == "send default"]
    assert len(sends) == 2 and all(s["kind"] == "PRODUCER" for s in sends)
    assert {s["parent_id"] for s in sends} == {request["span_id"]}
    assert {s["attributes"]["messaging.message.id"] for s in sends} == {
        producer["ok"],
        producer["fails"],
    }

    spans_file = tmp_path / "spans.jsonl"
    monkeypatch.setenv("JQ_TEST_SPANS", str(spans_file))
    runner = work("--app", "tracing_jobs", "--burst")
    assert runner.wait(60) == 0, runner.output()[-3000:]
    assert (status(jq, producer["ok"]), status(jq, producer["fails"])) == (SUCCEEDED, FAILED)
    spans = [json.loads(line) for line in spans_file.read_text().splitlines()]
    process = {s["attributes"]["messaging.message.id"]: s for s in spans if s["kind"] == "CONSUMER"}
    send_of = {s["attributes"]["messaging.message.id"]: s for s in sends}
    for job_id, span in process.items():
        assert span["name"] == "process default"
        assert span["trace_id"] == request["trace_id"], "the run's span is in the enqueue's trace"
        assert span["parent_id"] == send_of[job_id]["span_id"]
        assert span["attributes"]["messaging.system"] == "jobqueue"
        assert span["attributes"]["messaging.destination.name"] == "default"
        assert span["attributes"]["jobqueue.job.attempt"] == 1
    assert set(process) == {producer["ok"], producer["fails"]}
    assert process[producer["ok"]]["status"] == "UNSET"
    failed = process[producer["fails"]]
    assert failed["status"] == "ERROR" and "exception" in failed["events"]
    assert failed["attributes"]["jobqueue.job.outcome"] == FAILED
    inside = next(s for s in spans if s["name"] == "inside the job")
    assert inside["parent_id"] == process[producer["ok"]]["span_id"]


def test_without_opentelemetry_nothing_is_imported_and_jobs_run(jq: JobQueue) -> None:
    script = textwrap.dedent(
        """
        import sys

        class NoOpenTelemetry:
            def find_spec(self, name, path=None, target=None):
                if name == "opentelemetry" or name.startswith("opentelemetry."):
                    raise ModuleNotFoundError(f"No module named {name!r}")
                return None

        sys.meta_path.insert(0, NoOpenTelemetry())
        from jobqueue import JobQueue, job
        from jobqueue.testing import drain

        @job(name="tracing.plain")
        def plain() -> None:
            pass

        jq = JobQueue(sys.argv[1])
        handle = plain.using(jobqueue=jq).enqueue()
        print(dict(drain(jq)), handle.fetch().trace_context, any(
            m.startswith("opentelemetry") for m in sys.modules))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script, jq.database_url], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["{'succeeded':", "1}", "None", "False"]
