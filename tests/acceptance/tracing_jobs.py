"""Jobs for tests/acceptance/test_tracing.py, and the worker's OpenTelemetry SDK set-up: every
finished span is appended as one JSON line to the file named by ``JQ_TEST_SPANS`` (opened per
export, so forked workers write safely)."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

from jobqueue import job


def span_record(span: ReadableSpan) -> dict[str, object]:
    """What the tests look at, with ids as hex strings."""
    context = span.get_span_context()
    assert context is not None
    return {
        "name": span.name,
        "kind": span.kind.name,
        "trace_id": format(context.trace_id, "032x"),
        "span_id": format(context.span_id, "016x"),
        "parent_id": format(span.parent.span_id, "016x") if span.parent else None,
        "attributes": dict(span.attributes or {}),
        "status": span.status.status_code.name,
        "events": [event.name for event in span.events],
    }


class FileExporter(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        with open(os.environ["JQ_TEST_SPANS"], "a") as out:
            for span in spans:
                out.write(json.dumps(span_record(span)) + "\n")
        return SpanExportResult.SUCCESS


if "JQ_TEST_SPANS" in os.environ:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(FileExporter()))
    trace.set_tracer_provider(provider)


@job(name="tracing.ok")
def ok() -> None:
    with trace.get_tracer("tests").start_as_current_span("inside the job"):
        pass


@job(name="tracing.fails", max_attempts=1)
def fails() -> None:
    raise ValueError("the job's own error")
