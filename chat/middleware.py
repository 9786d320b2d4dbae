"""ASGI middleware for the chat socket."""

from channels.security.websocket import OriginValidator
from django.conf import settings


class OriginCheckMiddleware(OriginValidator):
    """Refuse (403) a handshake whose Origin is not one of ALLOWED_HOSTS.

    This stops cross-site WebSocket hijacking: a page on another site cannot
    open a socket with the visitor's session cookie. A handshake with no
    Origin header comes from a non-browser client (a bot, the CLI), which
    cannot borrow anyone's cookie, so it is let through to authentication.
    """

    def __init__(self, application):
        super().__init__(application, settings.ALLOWED_HOSTS)

    def valid_origin(self, parsed_origin) -> bool:
        """Accept a missing Origin; otherwise match it against ALLOWED_HOSTS."""
        if parsed_origin is None:
            return True
        return super().valid_origin(parsed_origin)
