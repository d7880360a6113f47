"""Private database servers that a test may stop, restart and crash: a PostgreSQL cluster
(``initdb`` + ``pg_ctl``) and a MariaDB server (``mariadb-install-db`` + ``mariadbd``), each on
a free port with its data in a temporary directory. The shared servers that other tests (and
other people) use are never touched.

Run as root, the servers run as their own OS users (``postgres``, ``mysql``): PostgreSQL refuses
to run as root. A machine without the binaries or the user raises :class:`ServerUnavailable`.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import create_engine, text

from jobqueue import migrations
from jobqueue.db import create_engine as create_jobqueue_engine


class ServerUnavailable(Exception):
    """The binaries or the OS user that a private server needs are missing here."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _private_directory(prefix: str, user: str) -> Path:
    """A fresh directory under the system temp dir, owned by ``user`` when we are root (pytest's
    own tmp_path sits under a root-only directory that the server's user cannot enter)."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    if os.geteuid() == 0:
        try:
            entry = pwd.getpwnam(user)
        except KeyError:
            shutil.rmtree(root)
            raise ServerUnavailable(f"there is no OS user {user!r} to run the server as") from None
        os.chown(root, entry.pw_uid, entry.pw_gid)
    return root


def _run(argv: list[str], what: str, timeout: float = 60) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed ({done.returncode}): {done.stdout}{done.stderr}")


def _wait_for_connection(url: str, timeout: float, alive: object = None) -> None:
    engine = create_engine(url)
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                with engine.connect() as connection:
                    connection.execute(text("SELECT 1"))
                return
            except Exception:
                if time.monotonic() > deadline or (callable(alive) and not alive()):
                    raise
                time.sleep(0.1)
    finally:
        engine.dispose()


class PrivateServer:
    """What the tests need of a private server: a migrated database, and the faults."""

    backend: str
    admin_url: str

    def create_database(self) -> str:
        """A new, migrated database on this server; returns its URL."""
        name = f"jq_{uuid.uuid4().hex[:10]}"
        admin = create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as connection:
                connection.execute(text(f"CREATE DATABASE {name}"))
        finally:
            admin.dispose()
        url = self.admin_url.rsplit("/", 1)[0] + f"/{name}"
        engine = create_jobqueue_engine(url)
        try:
            migrations.upgrade(engine)
        finally:
            engine.dispose()
        return url

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        """A clean shutdown: connections are ended, committed work is on disk."""
        raise NotImplementedError

    def crash(self) -> None:
        """The server's processes die at once (crash recovery runs at the next start)."""
        raise NotImplementedError

    def restart(self, *, crash: bool) -> None:
        """Stop (cleanly, or by a crash) and start again at once."""
        if crash:
            self.crash()
        else:
            self.stop()
        self.start()

    def close(self) -> None:
        raise NotImplementedError


class PrivatePostgres(PrivateServer):
    backend = "postgresql"

    def __init__(self) -> None:
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
        pg_ctl = found[-1] if found else shutil.which("pg_ctl")
        if pg_ctl is None:
            raise ServerUnavailable("no PostgreSQL server binaries (pg_ctl, initdb) were found")
        self._bin = Path(pg_ctl).parent
        self.root = _private_directory("jobqueue-pg-", "postgres")
        self.port = free_port()
        self.admin_url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"
        self._data = self.root / "data"
        self._running = False
        try:
            self._as_postgres(
                "initdb",
                [
                    "-D",
                    str(self._data),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "--no-sync",
                    "-E",
                    "UTF8",
                ],
            )
        except BaseException:
            shutil.rmtree(self.root, ignore_errors=True)
            raise

    def _as_postgres(self, program: str, args: list[str]) -> None:
        argv = [str(self._bin / program), *args]
        if os.geteuid() == 0:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        _run(argv, program)

    def _pg_ctl(self, *args: str) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1"
        self._as_postgres(
            "pg_ctl",
            ["-D", str(self._data), "-l", str(self.root / "log"), "-w", "-o", options, *args],
        )

    def start(self) -> None:
        self._pg_ctl("start")
        self._running = True

    def stop(self) -> None:
        self._pg_ctl("-m", "fast", "stop")
        self._running = False

    def crash(self) -> None:
        self._pg_ctl("-m", "immediate", "stop")
        self._running = False

    def restart(self, *, crash: bool) -> None:
        """``pg_ctl restart -m fast`` (clean) or ``-m immediate`` (a crash, then recovery)."""
        self._pg_ctl("-m", "immediate" if crash else "fast", "restart")
        self._running = True

    def log(self) -> str:
        path = self.root / "log"
        return path.read_text(errors="replace") if path.exists() else ""

    def close(self) -> None:
        try:
            if self._running:
                self.crash()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


class PrivateMariaDB(PrivateServer):
    backend = "mysql"

    def __init__(self) -> None:
        server = shutil.which("mariadbd") or shutil.which("mariadbd", path="/usr/sbin")
        install = shutil.which("mariadb-install-db")
        if server is None or install is None:
            raise ServerUnavailable("no MariaDB server binaries (mariadbd, mariadb-install-db)")
        self._server = server
        self.root = _private_directory("jobqueue-mariadb-", "mysql")
        self.port = free_port()
        self.admin_url = f"mysql+pymysql://root@127.0.0.1:{self.port}/mysql"
        self._process: subprocess.Popen[bytes] | None = None
        user = ["--user=mysql"] if os.geteuid() == 0 else []
        self._options = [
            "--no-defaults",
            *user,
            f"--datadir={self.root / 'data'}",
            "--innodb-buffer-pool-size=32M",
            "--innodb-log-file-size=16M",
        ]
        try:
            _run(
                [install, *self._options, "--auth-root-authentication-method=normal"],
                "mariadb-install-db",
            )
        except BaseException:
            shutil.rmtree(self.root, ignore_errors=True)
            raise

    def start(self) -> None:
        self._process = subprocess.Popen(
            [
                self._server,
                *self._options,
                f"--port={self.port}",
                "--bind-address=127.0.0.1",
                f"--socket={self.root / 'mariadb.sock'}",
                f"--pid-file={self.root / 'mariadb.pid'}",
                f"--log-error={self.root / 'error.log'}",
                "--skip-log-bin",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        process = self._process
        try:
            _wait_for_connection(self.admin_url, 60, alive=lambda: process.poll() is None)
        except Exception as error:
            raise RuntimeError(f"mariadbd did not start: {error}\n{self.log()[-3000:]}") from None

    def _end(self, signum: int) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signum)
            self._process.wait(60)
        self._process = None

    def stop(self) -> None:
        self._end(signal.SIGTERM)  # mariadbd's clean shutdown

    def crash(self) -> None:
        self._end(signal.SIGKILL)

    def log(self) -> str:
        path = self.root / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def close(self) -> None:
        try:
            self.crash()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


SERVERS: dict[str, type[PrivateServer]] = {"postgresql": PrivatePostgres, "mysql": PrivateMariaDB}


def start_private_server(backend: str) -> PrivateServer:
    """Set up and start a private server of ``backend``; raises ServerUnavailable."""
    server = SERVERS[backend]()
    try:
        server.start()
    except BaseException:
        server.close()
        raise
    return server
