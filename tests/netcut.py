"""A TCP proxy in front of a database server that a test can take down and bring back.

Workers that connect through it see a real network outage: every open connection is cut, and
new connections are closed as soon as they are made, until the test restores it. The server
itself, which other tests share, is never touched.
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
        self._lose_answer = False
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

    def lose_next_answer(self) -> None:
        """Drop the next data the server sends and cut that connection: the server carried out
        the request, but the client never hears so."""
        with self._lock:
            self._lose_answer = True

    def restore(self) -> None:
        with self._lock:
            self._down = False

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
                client, _ = self._listener.accept()
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
            for source, sink, answers in ((client, upstream, False), (upstream, client, True)):
                threading.Thread(
                    target=self._pipe,
                    args=(source, sink, answers),
                    name="proxy-pipe",
                    daemon=True,
                ).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, answers: bool) -> None:
        try:
            while data := source.recv(65536):
                if answers and self._take_lost_answer():
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

    def _take_lost_answer(self) -> bool:
        if not self._lose_answer:
            return False
        with self._lock:
            lose, self._lose_answer = self._lose_answer, False
        return lose


def _close(sock: socket.socket) -> None:
    """Shut down first: that wakes a thread blocked in recv(), which close() alone does not."""
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()
