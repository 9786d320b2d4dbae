"""Socket authentication from the Django session cookie, read once at the handshake."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from importlib import import_module

from asgiref.typing import ASGIReceiveCallable, ASGISendCallable, WebSocketScope
from django.conf import settings
from django.contrib import auth
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.contrib.auth.models import AnonymousUser
from django.contrib.sessions.backends.base import SessionBase
from django.contrib.sessions.models import Session
from django.db.models.functions import Now
from django.http import HttpRequest
from django.http.cookie import parse_cookie

from chat import dbguard
from chat.access import SocketSession, session_hash_holds
from chat.compiled import Compiled
from chat.permissions import User, decide_manager


class SocketScope(WebSocketScope, total=False):
    """A chat handshake's scope as the socket's middlewares fill it in (here and api.auth)."""

    cookies: dict[str, str]
    session: SocketSession
    user: User


# An ASGI application that takes a chat handshake's scope.
SocketApp = Callable[[SocketScope, ASGIReceiveCallable, ASGISendCallable], Awaitable[None]]


_DB_SESSIONS = "django.contrib.sessions.backends.db"
_MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"

# What SessionStore.load and ModelBackend.get_user read, compiled once (chat.compiled).
# The database's clock decides expiry (Now()): a datetime parameter would need each
# vendor's adaptation at every call, which is what compiling once leaves out.
_session_data = Compiled(
    lambda key: Session.objects.filter(session_key=key, expire_date__gt=Now()).values_list(
        "session_data"
    ),
    key="sample-session-key",
)
_user_by_id = Compiled(lambda pk: get_user_model()._default_manager.filter(pk=pk), pk=-7)


def _load_session(session: SessionBase) -> None:
    """Load a database session as SessionStore.load does, through the compiled query."""
    key = session.session_key
    rows = [] if key is None else _session_data.rows(key=key)
    # SessionBase keeps what load() returned in _session_cache (not in its stubs).
    if rows:
        session._session_cache = session.decode(rows[0][0])  # type: ignore[attr-defined]
    else:
        session._session_key = None  # as load(): the key names no live session
        session._session_cache = {}  # type: ignore[attr-defined]


def _quick_user(session: SessionBase) -> User | None:
    """auth.get_user's answer where it is plain, else None (then ask Django itself).

    Plain: the session names no user (anonymous), or a user of the model
    backend whose session hash matches (the user) or who is gone or inactive
    (anonymous). A hash made with one of SECRET_KEY_FALLBACKS (a key being
    rotated out) is the user too, as for Django; but where Django would also
    cycle the session to the new key, this leaves it alone: a socket cannot
    send the browser its new cookie, so cycling here would log the user out.
    The page's next request moves the session to the new key. Any other
    hash is left to Django, which flushes the session.
    """
    try:
        user_id = session[SESSION_KEY]
        backend = session[BACKEND_SESSION_KEY]
    except KeyError:
        return AnonymousUser()
    if backend != _MODEL_BACKEND or backend not in settings.AUTHENTICATION_BACKENDS:
        return None
    model = get_user_model()
    try:
        pk = model._meta.pk.to_python(user_id)
    except Exception:
        return None
    user = _user_by_id.first(pk=pk)
    if user is None or not getattr(user, "is_active", True):
        return AnonymousUser()  # ModelBackend.get_user: no such user, or may not log in
    session_hash = session.get(HASH_SESSION_KEY)
    if session_hash and session_hash_holds(user, session_hash):
        return user
    return None


def _user_of(session: SessionBase) -> User:
    """The session's user, checked as Django checks a request's (AnonymousUser if none).

    A database session is read with compiled queries (two reads, no ORM
    building), another engine's by its store; any case that is not plain
    goes through auth.get_user.
    """
    if settings.SESSION_ENGINE == _DB_SESSIONS:
        _load_session(session)
    user = _quick_user(session)
    if user is None:
        request = HttpRequest()
        request.session = session
        user = auth.get_user(request)
    decide_manager(user)  # here, in the database thread (chat.permissions)
    return user


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
