"""Socket authentication from the Django session cookie, read once at the handshake."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from importlib import import_module

from asgiref.typing import ASGIReceiveCallable, ASGISendCallable, WebSocketScope
from django.conf import settings
from django.contrib import auth
from django.contrib.sessions.backends.base import SessionBase
from django.http import HttpRequest
from django.http.cookie import parse_cookie

from chat import dbguard
from chat.access import SocketSession
from chat.permissions import User


class SocketScope(WebSocketScope, total=False):
    """A chat handshake's scope as the socket's middlewares fill it in (here and api.auth)."""

    cookies: dict[str, str]
    session: SocketSession
    user: User


# An ASGI application that takes a chat handshake's scope.
SocketApp = Callable[[SocketScope, ASGIReceiveCallable, ASGISendCallable], Awaitable[None]]


def _user_of(session: SessionBase) -> User:
    """The session's user, checked as Django checks a request's (AnonymousUser if none)."""
    request = HttpRequest()
    request.session = session
    return auth.get_user(request)


class SessionAuthMiddleware:
    """Put the session and its user (AnonymousUser if none) in the scope; read-only.

    channels' AuthMiddlewareStack does the same but also wraps every send to
    save the session if it changed, which costs a lazy-object lookup per
    frame sent; a chat socket never changes the session, so this middleware
    loads it once and leaves send alone.
    """

    def __init__(self, app: SocketApp) -> None:
        self.app = app
        self.store: type[SessionBase] = import_module(settings.SESSION_ENGINE).SessionStore

    async def __call__(
        self, scope: WebSocketScope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        """Resolve the user once, then run the app with a plain scope (or refuse: database down)."""
        cookies: dict[str, str] = {}
        for name, value in scope.get("headers", []):
            if name == b"cookie":
                cookies = parse_cookie(value.decode("latin1"))
                break
        session = self.store(cookies.get(settings.SESSION_COOKIE_NAME))
        try:
            user: User = await dbguard.in_pool(_user_of)(session)
        except dbguard.DATABASE_ERRORS as exc:
            return await dbguard.refuse_handshake(exc, receive, send)
        socket_scope: SocketScope = {**scope, "cookies": cookies, "session": session, "user": user}
        return await self.app(socket_scope, receive, send)
