"""Inline mode's runner: each enqueued job runs at once, in the calling thread, with its durable
steps recorded in memory (:class:`~jobqueue.steps.InlineRun`) for the test to read."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from jobqueue.database import Database
from jobqueue.enqueue import InlineRunner
from jobqueue.registry import registry
from jobqueue.serialization import decode_arguments, decode_value, encode_value
from jobqueue.steps import InlineRun, running_inline


class InlineRuns(list[InlineRun]):
    """The jobs run in an ``inline()`` block, in the order they were enqueued."""

    def named(self, name: str) -> list[InlineRun]:
        """The runs of the job registered as ``name``."""
        return [run for run in self if run.name == name]


def runner(runs: InlineRuns, database: Database | None) -> InlineRunner:
    """Run each row's job now, letting its exceptions propagate; return what each returned
    (strict JSON, as a worker would store it: a value JSON cannot hold is an error here, so a
    test learns what a worker would drop)."""

    def run(rows: Sequence[dict[str, Any]]) -> list[Any]:
        results: list[Any] = []
        for row in rows:
            definition = registry.get(row["name"])
            args, kwargs = decode_arguments(row["args"])
            record = InlineRun(row["id"], row["name"], database)
            runs.append(record)
            with running_inline(record):
                value = definition.callable_for_run()(*args, **kwargs)
                if definition.is_async:
                    value = asyncio.run(value)
            if value is not None:
                text = encode_value(value, what=f"the result of job {row['name']!r}")
                record.result = decode_value(text)
            results.append(record.result)
        return results

    return run
