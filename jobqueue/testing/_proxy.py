"""A TCP proxy in front of a PostgreSQL or MariaDB server that can lose replies and go down.

Connections routed through it see real network faults, while the server itself, which other
tests share, is never touched:

- ``lose_next_answer(port)`` lets a request (say a COMMIT) land on the server and drops the
  server's answer to the one client connection on ``port``, cutting it: the client sees its
  connection fail, as it does when a network path breaks between a write and its reply. Other
  connections (the worker's LISTEN connection, a second pool member) are left alone. The
  due-work host uses this for its crash histories. ``lose_next_answer()`` does the same to
  whichever connection gets an answer next.
- ``take_down()`` cuts every open connection and closes new ones as soon as they are made,
  until ``restore()``: an outage.
"""

from __future__ import annotations

import contextlib
import socket
import threading

from sqlalchemy.engine import make_url


class CuttableProxy:
    def __init__(self, database_url: str) -> None:
        url = make_url(database_url)
        self._target = (url.host or "127.0.0.1", int(url.port or 0))
        self._url = url
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._down = False
        self._closed = False
        self._lose_answer = False  # the next answer to any connection is dropped
        self._lose_for: set[int] = set()  # client ports whose next answer is dropped
        self.refused = 0  # connections closed at once while down
        threading.Thread(target=self._accept, name="proxy-accept", daemon=True).start()

    @property
    def url(self) -> str:
        """The database URL that goes through this proxy."""
        return self._url.set(host="127.0.0.1", port=self.port).render_as_string(hide_password=False)

    def take_down(self) -> int:
        """Cut every open connection and refuse new ones; returns how many were cut."""
        with self._lock:
            self._down = True
            cut = list(self._open)
            self._open.clear()
        for sock in cut:
            _close(sock)
        return len(cut) // 2

    def restore(self) -> None:
        with self._lock:
            self._down = False

    def lose_next_answer(self, client_port: int | None = None) -> None:
        """Drop the next data the server sends to the client on ``client_port`` (None: to any
        client) and cut that connection: the server carried out the request; the client never
        hears so."""
        with self._lock:
            if client_port is None:
                self._lose_answer = True
            else:
                self._lose_for.add(client_port)

    def close(self) -> None:
        self._closed = True
        self.take_down()
        self._listener.close()

    def __enter__(self) -> CuttableProxy:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _accept(self) -> None:
        while True:
            try:
                client, (_host, client_port) = self._listener.accept()
            except OSError:
                return  # closed
            with self._lock:
                down = self._down or self._closed
                self.refused += down
            if down:
                _close(client)
                continue
            try:
                upstream = socket.create_connection(self._target, timeout=5)
            except OSError:
                _close(client)
                continue
            upstream.settimeout(None)
            with self._lock:
                self._open.update((client, upstream))
            for source, sink, port in ((client, upstream, None), (upstream, client, client_port)):
                threading.Thread(
                    target=self._pipe, args=(source, sink, port), name="proxy-pipe", daemon=True
                ).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, answers_to: int | None) -> None:
        try:
            while data := source.recv(65536):
                if answers_to is not None and self._take(answers_to):
                    break  # dropped; the finally cuts both sides
                sink.sendall(data)
        except OSError:
            pass
        finally:
            with self._lock:
                self._open.discard(source)
                self._open.discard(sink)
            _close(source)
            _close(sink)

    def _take(self, port: int) -> bool:
        """Whether the answer now on its way to the client on ``port`` is to be dropped."""
        with self._lock:
            if self._lose_answer:
                self._lose_answer = False
                return True
            if port in self._lose_for:
                self._lose_for.discard(port)
                return True
            return False


def client_port(dbapi_connection: object) -> int | None:
    """The local port of a psycopg or PyMySQL connection's socket (None: not a TCP driver we
    know, such as SQLite)."""
    pgconn = getattr(dbapi_connection, "pgconn", None)
    if pgconn is not None:
        sock = socket.socket(fileno=pgconn.socket)
        try:
            return int(sock.getsockname()[1])
        finally:
            sock.detach()  # the fd stays psycopg's
    raw = getattr(dbapi_connection, "_sock", None)
    if isinstance(raw, socket.socket):
        return int(raw.getsockname()[1])
    return None


def _close(sock: socket.socket) -> None:
    """Shut down first: that wakes a thread blocked in recv(), which close() alone does not."""
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()
