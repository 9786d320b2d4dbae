"""Middleware: the chat socket's origin check, and the log context of HTTP requests."""

from __future__ import annotations

import tempfile
from collections.abc import Awaitable, Callable
from inspect import iscoroutinefunction
from typing import Any
from urllib.parse import urlsplit

from asgiref.typing import (
    ASGIReceiveCallable,
    ASGISendCallable,
    ASGISendEvent,
    Scope,
    WebSocketScope,
)
from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.http.request import split_domain_port, validate_host
from django.utils.decorators import sync_and_async_middleware
from django.utils.http import is_same_domain

from chat import conf as chat_conf
from chat import logcontext, metrics, protocol
from chat.errors import ChatError, ErrorCode

DEFAULT_PORTS = {"http": "80", "https": "443"}

Origin = tuple[str, str, str]  # scheme, host (lower case), port (default ports filled in)

# An ASGI application that takes a WebSocket handshake's scope.
WebSocketApp = Callable[[WebSocketScope, ASGIReceiveCallable, ASGISendCallable], Awaitable[None]]
# Django's ASGI handler, or any ASGI application (django-stubs and asgiref type them apart).
HttpApp = Callable[[Any, Any, Any], Awaitable[None]]


def parse_origin(value: str) -> Origin | None:
    """``scheme://host[:port]`` as (scheme, host, port), or None if it is not such an origin."""
    try:
        parts = urlsplit(value.strip())
    except ValueError:
        return None
    if parts.scheme.lower() not in DEFAULT_PORTS or parts.path or parts.query or parts.fragment:
        return None
    if "@" in parts.netloc:
        return None
    host, port = split_domain_port(parts.netloc)
    if not host or (port and not port.isdigit()):
        return None
    scheme = parts.scheme.lower()
    return scheme, host, str(int(port)) if port else DEFAULT_PORTS[scheme]


def _header(scope: WebSocketScope, name: bytes) -> str | None:
    """The handshake's first ``name`` header (a lower-case name), or None."""
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin1")
    return None


def served_scheme(scope: WebSocketScope) -> str:
    """The page scheme a browser on this server used: as Django decides for HTTP requests."""
    proxy = settings.SECURE_PROXY_SSL_HEADER
    if proxy:
        name, secure_value = proxy
        # HTTP_X_FORWARDED_PROTO -> x-forwarded-proto
        value = _header(scope, name.removeprefix("HTTP_").replace("_", "-").lower().encode())
        if value is not None:
            return "https" if value.split(",", 1)[0].strip() == secure_value else "http"
    return "https" if scope.get("scheme") == "wss" else "http"


def own_origin(scope: WebSocketScope) -> Origin | None:
    """The server's origin as this handshake reached it, if its Host is an allowed one."""
    host_header = _header(scope, b"host")
    if host_header is None:
        return None
    host, port = split_domain_port(host_header)
    if not host or not validate_host(host, settings.ALLOWED_HOSTS):
        return None
    if port and not port.isdigit():
        return None
    scheme = served_scheme(scope)
    return scheme, host, str(int(port)) if port else DEFAULT_PORTS[scheme]


def trusted(origin: Origin, pattern: str) -> bool:
    """True if ``origin`` matches a CSRF_TRUSTED_ORIGINS entry (``https://*.example.com`` too)."""
    wildcard = "://*." in pattern
    allowed = parse_origin(pattern.replace("://*.", "://", 1) if wildcard else pattern)
    if allowed is None:
        return False
    scheme, host, port = allowed
    if origin[0] != scheme or origin[2] != port:
        return False
    return is_same_domain(origin[1], "." + host) if wildcard else origin[1] == host


def origin_allowed(scope: WebSocketScope) -> bool:
    """The handshake's Origin is absent, the server's own origin, or a trusted one."""
    value = _header(scope, b"origin")
    if value is None:
        return True  # not a browser: it cannot lend anyone's cookie, authentication decides
    origin = parse_origin(value)  # "null" (sandboxed frames, file:// pages) parses to None
    if origin is None:
        return False
    if origin == own_origin(scope):
        return True
    return any(trusted(origin, pattern) for pattern in settings.CSRF_TRUSTED_ORIGINS)


class OriginCheckMiddleware:
    """Refuse (403) a handshake whose Origin is not this server's own or a trusted one.

    This stops cross-site WebSocket hijacking: a page on another site cannot
    open a socket with the visitor's session cookie. The whole origin counts
    (scheme, host and port), as for Django's CSRF check: the server's own is
    the Host header's host (one of ALLOWED_HOSTS) and port with the scheme the
    page was served over (http for ws, https for wss or, behind
    BEHIND_TLS_PROXY, X-Forwarded-Proto); CSRF_TRUSTED_ORIGINS adds others. A
    handshake with no Origin header comes from a non-browser client (a bot,
    the CLI), which cannot borrow anyone's cookie, so it is let through to
    authentication.
    """

    def __init__(self, application: WebSocketApp) -> None:
        self.application = application

    async def __call__(
        self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        """Pass an allowed handshake on; deny any other with 403."""
        if scope["type"] != "websocket":
            raise ValueError("OriginCheckMiddleware guards WebSocket connections only.")
        if origin_allowed(scope):
            await self.application(scope, receive, send)
        else:
            metrics.socket_refused("origin")
            await WebsocketDenier()(scope, receive, send)


class RequestIdMiddleware:
    """ASGI middleware for HTTP: each request's log lines carry its ``request_id``.

    The id is the request's ``X-Request-ID`` header when that is a sane
    token (a proxy's, so its logs and ours join up), else a fresh one; the
    response echoes it in ``X-Request-ID``. It wraps all of Django, so
    django.request's own lines (a 404, a 500) carry it too.
    """

    def __init__(self, application: HttpApp) -> None:
        self.application = application

    async def __call__(
        self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        """Run the request with its id bound (and no other request's fields); echo the id."""
        if scope["type"] != "http":
            await self.application(scope, receive, send)
            return
        incoming = None
        for key, value in scope.get("headers", []):
            if key == b"x-request-id":
                incoming = value.decode("latin1")
                break
        request_id = logcontext.sane_request_id(incoming)
        header = (b"x-request-id", request_id.encode())

        async def send_with_id(event: ASGISendEvent) -> None:
            if event["type"] == "http.response.start":
                headers = [h for h in event.get("headers", []) if h[0].lower() != b"x-request-id"]
                event = {**event, "headers": [*headers, header]}
            await send(event)

        with logcontext.bound(request_id=request_id, socket_id=None, user_id=None, room=None):
            await self.application(scope, receive, send_with_id)


# What a multipart body may add to its one file: boundaries, part headers, a long name.
UPLOAD_OVERHEAD = 64 * 1024
UPLOAD_PATH_SUFFIX = "/api/uploads"  # wherever chat.urls is mounted (docs/embedding.md)


class UploadLimitMiddleware:
    """ASGI middleware for HTTP: an upload body over CHAT_UPLOAD_MAX_BYTES is refused (413)
    before Django spools it.

    Django's ASGI handler reads a whole body to disk before any view runs, so the
    upload view's own size check would come after the bytes were taken in. Here a
    Content-Length over the limit (plus UPLOAD_OVERHEAD) is answered at once,
    unread. A body without one (chunked) is read here as it arrives, refused
    once past the limit, and otherwise handed on with its length, which Django's
    multipart parser needs (it reads no body without a Content-Length).
    """

    def __init__(self, application: HttpApp) -> None:
        self.application = application

    async def __call__(
        self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        """Guard POST bodies to the upload path; pass everything else through untouched."""
        if (
            scope["type"] != "http"
            or scope["method"] != "POST"
            or not scope["path"].endswith(UPLOAD_PATH_SUFFIX)
        ):
            await self.application(scope, receive, send)
            return
        limit = int(chat_conf.CHAT_UPLOAD_MAX_BYTES) + UPLOAD_OVERHEAD
        for key, value in scope.get("headers", []):
            if key == b"content-length":
                if value.isdigit() and int(value) > limit:
                    await _too_large(send, f"The request has {int(value)} bytes")
                    return
                # The server stops reading at the declared length: nothing more to count.
                await self.application(scope, receive, send)
                return
        with tempfile.SpooledTemporaryFile(max_size=1024 * 1024) as body:
            size = 0
            more = True
            while more:
                event = await receive()
                if event["type"] != "http.request":
                    return  # the client went away
                chunk = event.get("body", b"")
                size += len(chunk)
                if size > limit:
                    await _too_large(send, f"The request has more than {limit} bytes")
                    return
                body.write(chunk)
                more = event.get("more_body", False)
            body.seek(0)
            headers = [*scope.get("headers", []), (b"content-length", str(size).encode())]
            done = False

            async def replay() -> Any:
                nonlocal done
                if done:
                    return await receive()  # after the body: the client's disconnect
                chunk = body.read(64 * 1024)
                done = body.tell() >= size
                return {"type": "http.request", "body": chunk, "more_body": not done}

            await self.application({**scope, "headers": headers}, replay, send)


async def _too_large(send: ASGISendCallable, said: str) -> None:
    """Answer FILE_TOO_LARGE (413) with the API's error body."""
    limit = chat_conf.CHAT_UPLOAD_MAX_BYTES
    body = protocol.error_frame(
        ChatError(ErrorCode.FILE_TOO_LARGE, f"{said}; a file may have {limit} bytes at most.")
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
            "trailers": False,
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})


@sync_and_async_middleware
def user_log_context(get_response: Any) -> Any:
    """Django middleware (after AuthenticationMiddleware): log lines carry the user's id.

    A REST call with a bearer token gets its user id from api.auth instead,
    once the token is checked.
    """
    if iscoroutinefunction(get_response):

        async def middleware(request: HttpRequest) -> HttpResponse:
            user = await request.auser()
            if user.is_authenticated:
                logcontext.user_id.set(user.pk)
            response: HttpResponse = await get_response(request)
            return response

    else:

        def middleware(request: HttpRequest) -> HttpResponse:  # type: ignore[misc]
            if request.user.is_authenticated:
                logcontext.user_id.set(request.user.pk)
            response: HttpResponse = get_response(request)
            return response

    return middleware
