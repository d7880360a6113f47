"""PostgreSQL LISTEN/NOTIFY: wake idle workers the moment a job is enqueued.

A dedicated autocommit psycopg connection outside the pool listens on the ``jobqueue``
channel; enqueue sends one ``pg_notify`` per queue per transaction, delivered at commit. After
any reconnect the worker polls once, since notifications sent while disconnected are lost.

Each connection is first proved: the listener sends itself a probe through the database URL (the
path every enqueue's notification takes) and waits for it on the listening connection. Behind
PgBouncer in transaction mode it never arrives (LISTEN is session state the pooler does not
keep), and a listener that trusted its LISTEN would wait for ever for wakes that never come. So
then it says so once, names ``listen_url`` (a direct connection to the server), and leaves the
worker to its polling, which starts jobs within the poll interval instead of at once.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import structlog

from jobqueue.db import libpq_conninfo, mask_url
from jobqueue.store.notify import PROBE_CHANNEL, listen, send_probe

log = structlog.get_logger("jobqueue.worker")

#: How long a listener waits for its own probe before it concludes notifications cannot reach
#: it (delivery takes milliseconds; this is for a loaded server).
PROBE_TIMEOUT = 10.0


class NotifyListener:
    def __init__(
        self,
        database_url: str,
        queues: Sequence[str] | None,
        wake: Callable[[], None],
        stopped: threading.Event,
        *,
        listen_url: str | None = None,
        probe_timeout: float = PROBE_TIMEOUT,
    ) -> None:
        self._listen_url = listen_url or database_url
        self._conninfo = libpq_conninfo(self._listen_url)
        self._sender_conninfo = libpq_conninfo(database_url)
        self._queues = set(queues) if queues is not None else None
        self._wake = wake
        self._stopped = stopped
        self._probe_timeout = probe_timeout
        self._thread = threading.Thread(target=self._run, name="jobqueue-listen", daemon=True)
        #: False once the probe proved notifications cannot arrive (the listener has stopped).
        self.reachable: bool | None = None

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def _run(self) -> None:
        import psycopg

        delay = 0.1
        while not self._stopped.is_set():
            try:
                with psycopg.connect(self._conninfo, autocommit=True, connect_timeout=5) as conn:
                    listen(conn, probe=True)
                    self.reachable = self._probe(conn)
                    if not self.reachable:
                        self._give_up()
                        return
                    log.info("listen_ready", listen_url=mask_url(self._listen_url))
                    delay = 0.1
                    self._wake()  # anything enqueued while we were not listening
                    while not self._stopped.is_set():
                        for notice in conn.notifies(timeout=0.5):
                            self._deliver(notice)
            except Exception as error:
                log.warning("listen_connection_lost", error=str(error).splitlines()[0])
                self._stopped.wait(delay)
                delay = min(delay * 2, 5.0)

    def _probe(self, conn: Any) -> bool:
        """Send a probe through the database URL and wait for it here; True once it arrives
        (notifications for queues that come meanwhile are passed on as usual)."""
        import psycopg

        token = uuid.uuid4().hex
        with psycopg.connect(self._sender_conninfo, autocommit=True, connect_timeout=5) as sender:
            send_probe(sender, token)
        deadline = time.monotonic() + self._probe_timeout
        while not self._stopped.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            for notice in conn.notifies(timeout=min(left, 0.5)):
                if notice.channel == PROBE_CHANNEL:
                    if notice.payload == token:
                        return True
                else:
                    self._deliver(notice)
        return True  # stopping: nothing to report

    def _deliver(self, notice: Any) -> None:
        if notice.channel == PROBE_CHANNEL:
            return  # another worker's probe
        if self._queues is None or notice.payload in self._queues:
            self._wake()

    def _give_up(self) -> None:
        log.warning(
            "listen_unavailable",
            listen_url=mask_url(self._listen_url),
            reason=f"a notification sent through the database URL did not arrive within "
            f"{self._probe_timeout:g} s; a transaction pooler such as PgBouncer in between?",
            hint="set listen_url (--listen-url, JOBQUEUE_LISTEN_URL) to a direct connection "
            "to PostgreSQL; until then this worker polls, and jobs start within the poll "
            "interval instead of at once",
        )
