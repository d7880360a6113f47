"""Checks every request passes before the dashboard's own code runs, as plain ASGI middleware:
they answer before anything reads the request's body, and their answers carry the headers too.

- :class:`HostGuard` (only without a token): the Host must be a loopback name or address, or
  one of the hosts the dashboard was started for. A DNS-rebinding page (evil.example, its name
  made to resolve to 127.0.0.1) reaches the server with its own name in Host, and gets 400: it
  can neither read a page (nor the CSRF token in it) nor post.
- :class:`OriginGuard`: a POST whose Origin (or, without one, whose Referer) names another
  origin gets 403, token or not: the browser says which page sent it.
- :class:`BodyLimit`: a POST's body is read up to a small cap before any parsing; one larger
  (by its Content-Length, or counted as it streams in) gets 413, and the rest is never read.
- :class:`SecurityHeaders`: every response forbids framing, inline script and MIME sniffing,
  and keeps the Referer on this origin.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from urllib.parse import urlsplit

from starlette.datastructures import URL, Headers, MutableHeaders
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from jobqueue.dashboard.security import is_loopback

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LOGIN_BODY_LIMIT = 4 * 1024  # a token, a CSRF token and a path
ACTION_BODY_LIMIT = 100 * 1024  # a bulk action's ids: 500 of them take about 16 KB
HEADERS = {
    "content-security-policy": "default-src 'self'; frame-ancestors 'none'; script-src 'self'",
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
}
_DEFAULT_PORTS = {"http": 80, "https": 443}


def host_name(host: str) -> str | None:
    """The name in a Host header (lowercase, no port, no IPv6 brackets); None if malformed."""
    if not host or any(c in host for c in "/\\@?# "):
        return None
    try:
        parts = urlsplit(f"//{host}")
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        return None
    return parts.hostname or None


def origin(url: str) -> str | None:
    """``scheme://host[:port]`` of ``url``, the port only when not the scheme's default;
    None for what names no origin (``null``, a relative URL)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    shown = f":{port}" if port is not None and port != _DEFAULT_PORTS[parts.scheme] else ""
    return f"{parts.scheme}://{host}{shown}"


async def _answer(scope: Scope, receive: Receive, send: Send, status: int, text: str) -> None:
    await PlainTextResponse(text, status_code=status)(scope, receive, send)


class HostGuard:
    """Serve only Hosts that are loopback or listed (``*`` any, ``*.example.com`` a domain)."""

    def __init__(self, app: ASGIApp, allowed_hosts: Sequence[str] = ()) -> None:
        self.app = app
        self.allowed = [pattern.lower().strip("[]") for pattern in allowed_hosts]

    def allows(self, host: str) -> bool:
        name = host_name(host)
        if name is None:
            return False
        return is_loopback(name) or any(
            pattern in ("*", name) or (pattern.startswith("*.") and name.endswith(pattern[1:]))
            for pattern in self.allowed
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not self.allows(Headers(scope=scope).get("host", "")):
            text = (
                "this dashboard has no token, so it answers only to localhost, loopback "
                "addresses and the hosts it was started for (--host, --allowed-host; "
                "create_app(allowed_hosts=...))"
            )
            await _answer(scope, receive, send, 400, text)
            return
        await self.app(scope, receive, send)


class OriginGuard:
    """Refuse a POST (any unsafe method) sent by a page of another origin."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] not in SAFE_METHODS:
            headers = Headers(scope=scope)
            sender = headers.get("origin")
            if sender is None and "referer" in headers:
                sender = origin(headers["referer"]) or "null"
            own = origin(str(URL(scope=scope)))
            if sender is not None and (own is None or origin(sender) != own):
                text = "refused: this request was sent by a page of another site"
                await _answer(scope, receive, send, 403, text)
                return
        await self.app(scope, receive, send)


class BodyLimit:
    """Read a POST's body, up to ``limit_for(path)`` bytes, before the app sees it."""

    def __init__(self, app: ASGIApp, limit_for: Callable[[str], int]) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in SAFE_METHODS:
            await self.app(scope, receive, send)
            return
        root, path = scope.get("root_path", ""), scope["path"]
        limit = self.limit_for(path[len(root) :] if root and path.startswith(root) else path)
        declared = Headers(scope=scope).get("content-length")
        too_large = f"the body is over the {limit} bytes this path accepts"
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await _answer(scope, receive, send, 413, too_large)
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client left: nobody to answer
            body += message.get("body", b"")
            if len(body) > limit:  # counted as it streams in: no Content-Length to trust
                await _answer(scope, receive, send, 413, too_large)
                return
            if not message.get("more_body", False):
                break
        pending = [{"type": "http.request", "body": bytes(body), "more_body": False}]

        async def replay() -> Message:
            return pending.pop() if pending else await receive()

        await self.app(scope, replay, send)


class SecurityHeaders:
    """Add :data:`HEADERS` to every response the app (or a guard above) sends."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in HEADERS.items():
                    headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)


def body_limit(path: str) -> int:
    """The login form's cap for ``/login``, the actions' for everything else."""
    return LOGIN_BODY_LIMIT if path == "/login" else ACTION_BODY_LIMIT
