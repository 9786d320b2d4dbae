"""ASGI entry point: HTTP goes to Django, /chat/stream/ to the chat consumer."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_asgi_app = get_asgi_application()

# Imported after Django is set up: these modules import models.
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from api.auth import BearerTokenMiddleware  # noqa: E402
from chat.auth import SessionAuthMiddleware  # noqa: E402
from chat.middleware import OriginCheckMiddleware, RequestIdMiddleware  # noqa: E402
from chat.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        # Each request's log lines carry its id, which the response echoes (X-Request-ID).
        "http": RequestIdMiddleware(django_asgi_app),
        # A bearer token (api.auth), if the handshake has one, wins over the session cookie.
        "websocket": OriginCheckMiddleware(
            SessionAuthMiddleware(BearerTokenMiddleware(URLRouter(websocket_urlpatterns)))
        ),
    }
)
