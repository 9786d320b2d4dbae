"""The chat's ASGI application: the project's HTTP app beside the chat socket.

A project that embeds the chat (docs/embedding.md) wraps its own application with it::

    django_asgi_app = get_asgi_application()
    from chat.asgi import wrap  # after Django is set up: it imports models
    application = wrap(django_asgi_app)

The standalone server's config/asgi.py does the same.
"""

from typing import Any

from channels.routing import ProtocolTypeRouter, URLRouter

from api.auth import BearerTokenMiddleware
from chat.auth import SessionAuthMiddleware
from chat.middleware import OriginCheckMiddleware, RequestIdMiddleware, UploadLimitMiddleware
from chat.routing import websocket_urlpatterns


def websocket_app() -> Any:
    """The socket stack: origin check, then the session cookie, then a bearer token, then routes.

    A bearer token (api.auth), if the handshake has one, wins over the session cookie.
    """
    return OriginCheckMiddleware(
        SessionAuthMiddleware(BearerTokenMiddleware(URLRouter(websocket_urlpatterns)))
    )


def wrap(http_app: Any) -> ProtocolTypeRouter:
    """``http_app`` (the project's Django ASGI app) for HTTP, the chat socket for WebSocket."""
    return ProtocolTypeRouter(
        {
            # Each request's log lines carry its id, which the response echoes (X-Request-ID).
            # An upload over the size limit is refused before Django spools its body.
            "http": RequestIdMiddleware(UploadLimitMiddleware(http_app)),
            "websocket": websocket_app(),
        }
    )
