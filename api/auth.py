"""Bearer-token authentication: for the chat socket (ASGI middleware) and the REST API.

A request or handshake that carries ``Authorization: Bearer <token>`` is
authenticated by that token alone, whatever cookie it also carries: a valid
token makes its user the caller; an invalid or revoked one makes the caller
anonymous, so the socket answers USER_HAS_TO_LOGIN and closes with 4401 and
the REST API answers 401.
"""

from __future__ import annotations

from asgiref.typing import ASGIReceiveCallable, ASGISendCallable
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.http import HttpRequest
from ninja.errors import AuthenticationError, HttpError
from ninja.security import APIKeyCookie, HttpBearer
from ninja.utils import check_csrf

from api import selectors, services, tokens
from api.models import ApiToken
from chat import dbguard, logcontext
from chat.auth import SocketApp, SocketScope
from chat.permissions import Account, User, decide_manager

REFUSED = "The token is not valid or was revoked; create one at /tokens/."


def authenticate_token(token: str) -> ApiToken | None:
    """The active token ``token`` (its user loaded), recording its use; None if invalid."""
    found = selectors.token_for_secret(token=token)
    if found is not None:
        services.token_used(token=found)
        decide_manager(found.user)  # here, in the database thread (chat.permissions)
    return found


class TokenSession:
    """Stands in for the session of a socket opened with a token.

    The consumer closes a socket when the session it was opened with logs out
    (``session_ended``) and checks the session's password hash when the user
    changes; a token socket's "session" is its token: revoking the token ends
    it, and a password change does not (the token stays valid until revoked).
    """

    ended_detail = "The token was revoked."

    def __init__(self, token_id: int) -> None:
        self.session_key = tokens.socket_session_key(token_id)

    def get(self, key: str, default: object = None) -> object:
        """No session data: there is no password hash to check."""
        return default

    @staticmethod
    def live_keys(keys: list[str]) -> set[str]:
        """The keys among ``keys`` whose token is still active (chat.access re-checks them)."""
        ids = {token_id for key in keys if (token_id := tokens.token_id(key)) is not None}
        active = ApiToken.objects.active().filter(pk__in=ids).values_list("pk", flat=True)
        return {tokens.socket_session_key(pk) for pk in active}


class TokenScope(SocketScope, total=False):
    """A chat handshake's scope, with the bearer token that authenticated it."""

    api_token: ApiToken


class BearerTokenMiddleware:
    """ASGI middleware: a handshake's bearer token, if any, decides ``scope["user"]``.

    Put it inside the session middleware, so that a bearer header wins over a cookie.
    """

    def __init__(self, app: SocketApp) -> None:
        self.app = app

    async def __call__(
        self, scope: SocketScope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        """Replace the user (and session) when the handshake has a bearer token."""
        token = None
        for name, value in scope.get("headers", []):
            if name == b"authorization":
                token = tokens.bearer_token(value.decode("latin1"))
                break
        if token is not None:
            try:
                found: ApiToken | None = await dbguard.in_pool(authenticate_token)(token)
            except dbguard.DATABASE_ERRORS as exc:
                return await dbguard.refuse_handshake(exc, receive, send)
            if found is None:
                scope = {**scope, "user": AnonymousUser()}
                scope.pop("session", None)
            else:
                token_scope: TokenScope = {
                    **scope,
                    "user": found.user,
                    "session": TokenSession(found.pk),
                    "api_token": found,
                }
                scope = token_scope
        return await self.app(scope, receive, send)


class BearerAuth(HttpBearer):
    """REST API: ``Authorization: Bearer <token>``; no CSRF check (no cookie is involved)."""

    def authenticate(self, request: HttpRequest, token: str) -> Account:
        """The token's user; an invalid or revoked token is a 401 (no fallback to the cookie)."""
        found = authenticate_token(token)
        if found is None:
            raise AuthenticationError(401, REFUSED)
        request.user = found.user
        logcontext.user_id.set(found.user.pk)  # this request's log lines name the caller
        return found.user


class SessionCookieAuth(APIKeyCookie):
    """REST API from the browser: the session cookie, with Django's CSRF check on writes."""

    param_name = settings.SESSION_COOKIE_NAME

    def _get_key(self, request: HttpRequest) -> str | None:
        """The session cookie of a logged-in user; CSRF is checked on writes (401 comes first)."""
        key = request.COOKIES.get(self.param_name)
        if key is None or not request.user.is_authenticated:
            return None
        if check_csrf(request) is not None:  # safe methods always pass
            raise HttpError(
                403, "CSRF check failed: send the X-CSRFToken header, or use a bearer token."
            )
        return key

    def authenticate(self, request: HttpRequest, key: str | None) -> User | None:
        """The logged-in user whose session the cookie carries."""
        return request.user if key is not None else None
