"""WebSocket URL routes: the chat socket at conf.socket_path() (standalone: /chat/stream/)."""

from django.urls import path

from chat import conf
from chat.consumers import ChatConsumer

websocket_urlpatterns = [
    path(conf.socket_path().lstrip("/"), ChatConsumer.as_asgi()),
]
