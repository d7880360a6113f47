"""procrastinate's side of the benchmark: its App and a no-op task, for
``procrastinate --app benchmarks.procrastinate_app.app worker``.

The task is ``async def``: procrastinate's worker is an asyncio loop and runs coroutine tasks
directly, where a plain function would be handed to a thread first. That is its best
configuration for jobs that do no blocking work.
"""

from __future__ import annotations

import os

from procrastinate import App, PsycopgConnector

DSN_ENV = "JQ_BENCH_PG_DSN"


def make_app(conninfo: str) -> App:
    """An App on ``conninfo`` with the no-op task. Its connector connects only when the app
    is opened: ``app.open()`` for a synchronous producer (procrastinate then uses a sync
    psycopg pool), the worker command opens it asynchronously."""
    app = App(connector=PsycopgConnector(conninfo=conninfo))

    @app.task(name="noop")
    async def noop() -> None:
        """Does nothing."""

    return app


app = make_app(os.environ.get(DSN_ENV, ""))
