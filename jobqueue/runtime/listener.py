"""PostgreSQL LISTEN/NOTIFY: wake idle workers the moment a job is enqueued.

A dedicated autocommit psycopg connection outside the pool listens on the ``jobqueue``
channel; enqueue sends one ``pg_notify`` per queue per transaction, delivered at commit. After
any reconnect the worker polls once, since notifications sent while disconnected are lost.
Behind PgBouncer in transaction mode LISTEN does not work: workers then rely on polling alone.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

import structlog

from jobqueue.db import libpq_conninfo
from jobqueue.store.jobs import listen

log = structlog.get_logger("jobqueue.worker")


class NotifyListener:
    def __init__(
        self,
        database_url: str,
        queues: Sequence[str] | None,
        wake: Callable[[], None],
        stopped: threading.Event,
    ) -> None:
        self._conninfo = libpq_conninfo(database_url)
        self._queues = set(queues) if queues is not None else None
        self._wake = wake
        self._stopped = stopped
        self._thread = threading.Thread(target=self._run, name="jobqueue-listen", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        import psycopg

        delay = 0.1
        while not self._stopped.is_set():
            try:
                with psycopg.connect(self._conninfo, autocommit=True, connect_timeout=5) as conn:
                    listen(conn)
                    delay = 0.1
                    self._wake()  # anything enqueued while we were not listening
                    while not self._stopped.is_set():
                        for notice in conn.notifies(timeout=0.5):
                            if self._queues is None or notice.payload in self._queues:
                                self._wake()
            except Exception as error:
                log.warning("listen_connection_lost", error=str(error).splitlines()[0])
                self._stopped.wait(delay)
                delay = min(delay * 2, 5.0)
