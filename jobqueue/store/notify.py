"""PostgreSQL LISTEN/NOTIFY statements for the worker's listener, on plain psycopg connections.

Besides the enqueue channel there is a probe channel: a listener sends itself one notification
along the path enqueues take (the database URL) and waits for it on its own connection (the
listen URL), which tells whether notifications reach it at all. Behind a transaction pooler
such as PgBouncer they do not: LISTEN is session state, and the pooler hands the session that
ran it to other clients between transactions.
"""

from __future__ import annotations

from typing import Any

from jobqueue.store.dialect import NOTIFY_CHANNEL

#: The channel a listener's probe travels on (never an enqueue's).
PROBE_CHANNEL = f"{NOTIFY_CHANNEL}_probe"


def listen(connection: Any, *, probe: bool = False) -> None:
    """Subscribe a plain (autocommit) psycopg connection to the enqueue notifications, and to
    the probe channel (other workers' probes that arrive later are ignored: an UNLISTEN would
    cost a statement at every connect to save a wake-up at other workers' starts)."""
    connection.execute(f"LISTEN {NOTIFY_CHANNEL}")
    if probe:
        connection.execute(f"LISTEN {PROBE_CHANNEL}")


def send_probe(connection: Any, token: str) -> None:
    """Send the probe ``token``; delivered when this autocommit statement commits."""
    connection.execute("SELECT pg_notify(%s, %s)", (PROBE_CHANNEL, token))
