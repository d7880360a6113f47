"""Who may see the dashboard and which POSTs are genuine: token auth and CSRF.

Auth is one shared token (``--token``), accepted as ``Authorization: Bearer T``, as the password
of HTTP basic auth (so ``curl -u :T`` and Prometheus' ``basic_auth`` work), or once through
``?token=T`` or the login form, which sets a cookie so a browser keeps working. The cookie holds
an HMAC of the token under the app's secret, never the token itself.

CSRF is a signed double submit: a random nonce lives in a cookie, and every form carries
HMAC(secret, nonce). A cross-site page can make the browser send the cookie but cannot read it,
so it cannot compute the field; a POST whose field does not match is refused with 403.

A token shorter than ``MIN_TOKEN_LENGTH`` is refused at start. Every wrong token (bearer, basic,
``?token=``, the login form) is logged as ``dashboard_auth_failed`` with the client's address,
never the secret, and counted: after too many from one address it gets 429 for a while
(:mod:`.ratelimit`). A cookie that no longer matches (the app restarted with a new secret) is
not a failure: the browser is simply sent to log in again.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import math
import secrets
from collections.abc import Awaitable, Callable
from urllib.parse import urlencode

import structlog
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response

from jobqueue.dashboard.ratelimit import FailureLimiter
from jobqueue.errors import ConfigurationError

log = structlog.get_logger("jobqueue.dashboard")

AUTH_COOKIE = "jobqueue_auth"
CSRF_COOKIE = "jobqueue_csrf"
CSRF_FIELD = "csrf_token"
OPEN_PATHS = ("/login",)  # reachable without the token: where it is entered
OPEN_PREFIXES = ("/static/",)  # the stylesheet and script, which the login form needs too
MIN_TOKEN_LENGTH = 16
MAKE_TOKEN = 'python -c "import secrets; print(secrets.token_urlsafe(32))"'


class WeakTokenError(ConfigurationError, ValueError):
    """The dashboard's token is too short to withstand guessing."""


def check_token(token: str | None) -> None:
    """Refuse a token that guessing could find (None, no token, is for the caller to judge)."""
    if token is not None and len(token) < MIN_TOKEN_LENGTH:
        raise WeakTokenError(
            f"the dashboard token must be at least {MIN_TOKEN_LENGTH} characters long (this "
            f"one has {len(token)}): make one with {MAKE_TOKEN}"
        )


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def route_path(request: Request) -> str:
    """The path inside this app, without the prefix it is mounted under."""
    root = request.scope.get("root_path", "")
    path: str = request.scope["path"]
    return path[len(root) :] if root and path.startswith(root) else path


def prefix(request: Request) -> str:
    """Where this app is mounted ('' at the root): links and cookies must carry it."""
    return str(request.scope.get("root_path", "")).rstrip("/")


class Security:
    """The token (if any), the per-app secret, and the checks built on them."""

    def __init__(self, *, token: str | None, secret: bytes | None) -> None:
        check_token(token)
        self.token = token
        # A fresh secret per app: restarting the dashboard logs browsers out, which is fine.
        self.secret = secret or secrets.token_bytes(32)
        self.failures = FailureLimiter()

    def _sign(self, purpose: str, value: str) -> str:
        return hmac.new(self.secret, f"{purpose}:{value}".encode(), hashlib.sha256).hexdigest()

    # -- auth ---------------------------------------------------------------------------------

    def token_matches(self, candidate: str | None) -> bool:
        if self.token is None or candidate is None:
            return False
        return hmac.compare_digest(candidate.encode(), self.token.encode())

    def offered(self, request: Request) -> tuple[str, str] | None:
        """The token a request offers and how (``query``, ``bearer``, ``basic``); None if it
        offers none (its cookie is checked apart, and is no guess)."""
        query = request.query_params.get("token")
        if query is not None:
            return "query", query
        scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer":
            return "bearer", credentials.strip()
        if scheme.lower() != "basic":
            return None
        try:
            decoded = base64.b64decode(credentials.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            decoded = ""
        return "basic", decoded.partition(":")[2]

    def cookie_ok(self, request: Request) -> bool:
        cookie = request.cookies.get(AUTH_COOKIE)
        return cookie is not None and hmac.compare_digest(cookie, self.auth_cookie_value())

    def auth_failed(self, request: Request, method: str) -> None:
        """Log a wrong token (who and how, never what) and count it against the address."""
        client = client_address(request)
        self.failures.record(client)
        log.warning("dashboard_auth_failed", client=client, method=method, path=route_path(request))

    def too_many_failures(self, request: Request) -> Response | None:
        """429 while this address has failed too often lately; None if it may try."""
        wait = self.failures.blocked_for(client_address(request))
        if wait <= 0:
            return None
        seconds = math.ceil(wait)
        return PlainTextResponse(
            f"too many wrong tokens from this address: try again in {seconds} s",
            status_code=429,
            headers={"Retry-After": str(seconds)},
        )

    def auth_cookie_value(self) -> str:
        assert self.token is not None
        return self._sign("auth", self.token)

    def log_in(self, response: Response, request: Request) -> Response:
        response.set_cookie(
            AUTH_COOKIE,
            self.auth_cookie_value(),
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path=prefix(request) or "/",
        )
        return response

    # -- CSRF ---------------------------------------------------------------------------------

    def csrf_nonce(self, request: Request) -> str:
        """This browser's nonce: from its cookie, or a new one the middleware will set."""
        nonce = request.cookies.get(CSRF_COOKIE)
        if not nonce or len(nonce) > 100:
            nonce = getattr(request.state, "new_csrf_nonce", None) or secrets.token_urlsafe(24)
            request.state.new_csrf_nonce = nonce
        return nonce

    def csrf_token(self, request: Request) -> str:
        """The value every form carries in its hidden ``csrf_token`` field."""
        return self._sign("csrf", self.csrf_nonce(request))

    def csrf_ok(self, request: Request, form: FormData) -> bool:
        nonce = request.cookies.get(CSRF_COOKIE)
        submitted = form.get(CSRF_FIELD)
        if not nonce or not isinstance(submitted, str):
            return False
        return hmac.compare_digest(submitted, self._sign("csrf", nonce))

    # -- the middleware -----------------------------------------------------------------------

    async def dispatch(
        self, request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        """Let authenticated requests through (and set the CSRF cookie they will need);
        send a browser without the token to the login form, anything else a 401."""
        path = route_path(request)
        if self.token is not None and path not in OPEN_PATHS and not path.startswith(OPEN_PREFIXES):
            refused = self._refusal(request, path)
            if refused is not None:
                return refused
        response = await call_next(request)
        nonce = getattr(request.state, "new_csrf_nonce", None)
        if nonce is not None:
            response.set_cookie(
                CSRF_COOKIE,
                nonce,
                httponly=True,
                samesite="strict",
                secure=request.url.scheme == "https",
                path=prefix(request) or "/",
            )
        return response

    def _refusal(self, request: Request, path: str) -> Response | None:
        """None if the request may go on; else its answer: 429 for an address that failed too
        often, 401 (or the login form) for a wrong or missing token, and for a right
        ``?token=`` the redirect that sets the cookie."""
        offered = self.offered(request)
        if offered is None:
            return None if self.cookie_ok(request) else self._challenge(request, path)
        method, candidate = offered
        blocked = self.too_many_failures(request)
        if blocked is not None:
            return blocked
        if not self.token_matches(candidate):
            self.auth_failed(request, method)
            if method == "query":
                return PlainTextResponse("wrong token", status_code=401)
            return self._challenge(request, path)
        return self._query_login(request) if method == "query" else None

    def _query_login(self, request: Request) -> Response:
        """``?token=T``: set the cookie and reload without the token in the address bar, on
        this app's own path (``//evil.example/x`` would be another site's address)."""
        rest = [(k, v) for k, v in request.query_params.multi_items() if k != "token"]
        target = safe_next(route_path(request) + (f"?{urlencode(rest)}" if rest else ""))
        return self.log_in(RedirectResponse(prefix(request) + target, status_code=303), request)

    def _challenge(self, request: Request, path: str) -> Response:
        if request.method == "GET" and "text/html" in request.headers.get("accept", ""):
            target = f"{prefix(request)}/login?{urlencode({'next': path})}"
            return RedirectResponse(target, status_code=303)
        return PlainTextResponse(
            "a token is required: Authorization: Bearer <token>, basic auth with the token "
            "as password, or ?token=<token>",
            status_code=401,
            headers={"WWW-Authenticate": 'Basic realm="jobqueue"'},
        )


def safe_next(value: object, default: str = "/") -> str:
    """A redirect target inside this app: a path, never another site (``//evil``)."""
    if not isinstance(value, str) or not value.startswith("/") or value.startswith("//"):
        return default
    return default if any(c in value for c in "\\\r\n") else value
