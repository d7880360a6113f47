"""``jobrunner dashboard``: serve the web dashboard with uvicorn.

Loopback by default. Any other address reaches other machines, so it needs ``--token`` (or an
explicit ``--insecure`` for a network you trust); the check runs before anything is bound. A
token must be long enough not to be guessed (16 characters at least). Without a token the
dashboard answers only to loopback names, ``--host`` and ``--allowed-host``: a web page whose
name is made to resolve to this machine (DNS rebinding) gets nothing.
"""

from __future__ import annotations

import argparse
import os
import socket
from typing import Any

import structlog

from jobqueue.errors import ConfigurationError

log = structlog.get_logger("jobqueue.dashboard")

ENV_TOKEN = "JOBQUEUE_DASHBOARD_TOKEN"
INSTALL_HINT = "pip install 'jobqueue[dashboard]'"


class MissingExtraError(ConfigurationError):
    """The dashboard's libraries (Starlette, Jinja2, uvicorn) are not installed."""


def add_dashboard_parser(commands: Any, add_database_url: Any) -> None:
    dashboard = commands.add_parser("dashboard", help="serve the web dashboard and /metrics")
    add_database_url(dashboard)
    dashboard.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    dashboard.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    dashboard.add_argument(
        "--token",
        default=os.environ.get(ENV_TOKEN),
        help=f"require this token on every request (default: ${ENV_TOKEN}); needed to bind "
        "anything but loopback",
    )
    dashboard.add_argument(
        "--insecure",
        action="store_true",
        help="allow a non-loopback --host without a token (a network you trust)",
    )
    dashboard.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="NAME",
        help="without --token, a host name or address browsers may use besides localhost and "
        "--host (repeatable; *.example.com for a domain)",
    )
    dashboard.add_argument(
        "--read-only", action="store_true", help="show everything, change nothing"
    )
    dashboard.add_argument(
        "--app",
        action="append",
        default=[],
        metavar="MODULE",
        help="modules defining @job(cron=...), for the recurring page (default: [tool.jobqueue] "
        "apps)",
    )
    dashboard.set_defaults(handler=cmd_dashboard)


def check_binding(host: str, token: str | None, insecure: bool) -> None:
    """Refuse to expose an unauthenticated dashboard beyond this machine, or to start with a
    token short enough to guess."""
    from jobqueue.dashboard.security import check_token, is_loopback

    check_token(token or None)
    if not is_loopback(host) and not token and not insecure:
        raise ConfigurationError(
            f"refusing to serve the dashboard on {host} without authentication: anyone who "
            "can reach it could retry, discard and cancel jobs. Pass --token TOKEN (or set "
            f"${ENV_TOKEN}), or --insecure if this network is trusted"
        )


def cmd_dashboard(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from jobqueue.dashboard import create_app
    except ImportError as error:
        raise MissingExtraError(
            f"the dashboard needs its extra ({error.name} is missing): run `{INSTALL_HINT}`"
        ) from None
    from jobqueue.apps import import_apps
    from jobqueue.config import find_project_settings
    from jobqueue.log import settle_logging
    from jobqueue.queue import JobQueue

    check_binding(args.host, args.token, args.insecure)
    import_apps(list(args.app) or list(find_project_settings().values.get("apps", [])))
    settle_logging()
    queue = JobQueue(args.database_url)
    queue.verify_schema()
    allowed_hosts = [args.host, *args.allowed_host]
    app = create_app(
        queue, token=args.token or None, read_only=args.read_only, allowed_hosts=allowed_hosts
    )
    from jobqueue.db import mask_url

    listener = _listen(args.host, args.port)  # before saying it started: the port may be taken
    log.info(
        "dashboard_started",
        url=f"http://{args.host}:{args.port}/",
        database=mask_url(queue.database_url),
        host=args.host,
        port=args.port,
        auth="token" if args.token else "none",
        allowed_hosts=None if args.token else ["localhost", "127.0.0.0/8", "::1", *allowed_hosts],
        read_only=args.read_only,
    )
    uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=[listener])
    return 0


def _listen(host: str, port: int) -> socket.socket:
    """The listening socket, bound here so that a taken port or a bad address is one line and
    exit 1, not uvicorn's traceback after a "started" line."""
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host.strip("[]"), port))
        listener.listen(128)
    except OSError as error:
        listener.close()
        raise ConfigurationError(f"cannot listen on {host}:{port}: {error.strerror}") from None
    return listener
