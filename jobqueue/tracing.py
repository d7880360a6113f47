"""OpenTelemetry, when it is installed (the ``otel`` extra): the enqueuing code's trace goes on
in the worker.

Enqueue runs in a ``send <queue>`` span (kind PRODUCER) and stores its context with the job
(W3C ``traceparent``, as JSON in ``job_queue.trace_context``). Each attempt runs in a
``process <queue>`` span (kind CONSUMER) whose parent is that context, so one trace shows the
request that enqueued a job and every attempt that ran it. Attributes follow OpenTelemetry's
messaging conventions (``messaging.system``, ``messaging.destination.name``,
``messaging.message.id``) plus ``jobqueue.job.name`` and ``jobqueue.job.attempt``; a failed
attempt records its exception and sets the span's status to ERROR.

Without the package nothing is imported and nothing is stored: the one import attempt is
made the first time it is needed and remembered. With the API but no SDK configured, spans
are the API's no-op ones and no context is stored.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

SYSTEM = "jobqueue"
_otel: Any = None  # the opentelemetry API once looked for; False when it is not installed


def available() -> bool:
    """Whether opentelemetry is importable (looked up once per process)."""
    global _otel
    if _otel is None:
        try:
            from opentelemetry import propagate, trace
        except ImportError:
            _otel = False
        else:
            _otel = (trace, propagate)
    return _otel is not False


def _tracer() -> Any:
    trace, _ = _otel
    return trace.get_tracer("jobqueue")


@contextmanager
def sending(queues: Sequence[str]) -> Iterator[tuple[Any, str | None]]:
    """The ``send`` span around an enqueue, and the context to store with its jobs (None when
    no trace is being recorded). Call only when :func:`available`."""
    trace, propagate = _otel
    destination = queues[0] if len(set(queues)) == 1 else "(several)"
    attributes: dict[str, Any] = {
        "messaging.system": SYSTEM,
        "messaging.operation.type": "send",
        "messaging.operation.name": "send",
        "messaging.destination.name": destination,
    }
    if len(queues) > 1:
        attributes["messaging.batch.message_count"] = len(queues)
    with _tracer().start_as_current_span(
        f"send {destination}", kind=trace.SpanKind.PRODUCER, attributes=attributes
    ) as span:
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        yield span, (json.dumps(carrier, sort_keys=True) if carrier else None)


def sent(span: Any, job_ids: Sequence[str]) -> None:
    """Name the job a single-job ``send`` span wrote."""
    if len(job_ids) == 1:
        span.set_attribute("messaging.message.id", job_ids[0])


@contextmanager
def processing(
    *, job_id: str, name: str, queue: str, attempt: int, trace_context: str | None
) -> Iterator[Any]:
    """The ``process`` span of one attempt, continuing the enqueue's trace where it was
    stored. Call only when :func:`available`."""
    trace, propagate = _otel
    parent = None
    if trace_context:
        try:
            parent = propagate.extract(json.loads(trace_context))
        except (ValueError, TypeError):  # a damaged context must not fail the job
            parent = None
    attributes = {
        "messaging.system": SYSTEM,
        "messaging.operation.type": "process",
        "messaging.operation.name": "process",
        "messaging.destination.name": queue,
        "messaging.message.id": job_id,
        "jobqueue.job.name": name,
        "jobqueue.job.attempt": attempt,
    }
    with _tracer().start_as_current_span(
        f"process {queue}",
        context=parent,
        kind=trace.SpanKind.CONSUMER,
        attributes=attributes,
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        yield span


def failed(span: Any, error: BaseException | None, status: str) -> None:
    """Mark an attempt's span failed: its exception recorded, status ERROR. Never raises, even
    for an exception whose ``str()`` does: tracing must not change what the attempt came to."""
    trace, _ = _otel
    description = status
    try:
        span.set_attribute("jobqueue.job.outcome", status)
        if error is not None:
            description = type(error).__name__
            span.record_exception(error)
            description = f"{type(error).__name__}: {error}"
    except Exception:  # the status below still says the attempt failed
        pass
    span.set_status(trace.Status(trace.StatusCode.ERROR, description[:500]))


def recording() -> bool:
    """Whether spans would be recorded: opentelemetry is installed and the app set a tracer
    provider. Without one, an enqueue or an attempt costs this check, not a no-op span.

    Answered from a cache renewed every ``RECHECK_SECONDS`` (this runs for every job), so a
    provider set after jobqueue's first enqueue or attempt takes effect within that time."""
    global _recording, _checked_at
    now = time.monotonic()
    if now - _checked_at < RECHECK_SECONDS:
        return _recording
    recording = False
    if available():
        trace, _ = _otel
        provider = trace.get_tracer_provider()
        recording = not isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider)
    # The answer first, then the time: another thread must never read a fresh time with the
    # answer it replaces.
    _recording = recording
    _checked_at = now
    return recording


RECHECK_SECONDS = 1.0
_recording = False
_checked_at = -RECHECK_SECONDS
