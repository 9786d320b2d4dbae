"""Socket authentication from the Django session cookie, read once at the handshake."""

from importlib import import_module

from channels.auth import get_user
from django.conf import settings
from django.http.cookie import parse_cookie

from chat import dbguard


class SessionAuthMiddleware:
    """Put the session and its user (AnonymousUser if none) in the scope; read-only.

    channels' AuthMiddlewareStack does the same but also wraps every send to
    save the session if it changed, which costs a lazy-object lookup per
    frame sent; a chat socket never changes the session, so this middleware
    loads it once and leaves send alone.
    """

    def __init__(self, app):
        self.app = app
        self.store = import_module(settings.SESSION_ENGINE).SessionStore

    async def __call__(self, scope, receive, send):
        """Resolve the user once, then run the app with a plain scope (or refuse: database down)."""
        cookies = {}
        for name, value in scope.get("headers", []):
            if name == b"cookie":
                cookies = parse_cookie(value.decode("latin1"))
                break
        scope = dict(scope, cookies=cookies)
        scope["session"] = self.store(cookies.get(settings.SESSION_COOKIE_NAME))
        try:
            scope["user"] = await get_user(scope)
        except dbguard.DATABASE_ERRORS as exc:
            return await dbguard.refuse_handshake(exc, receive, send)
        return await self.app(scope, receive, send)
