"""WebSocket URL routes: the chat socket at CHAT_SOCKET_PATH (default /chat/stream/)."""

from django.urls import path

from chat import conf
from chat.consumers import ChatConsumer

websocket_urlpatterns = [
    path(conf.CHAT_SOCKET_PATH.lstrip("/"), ChatConsumer.as_asgi()),
]
