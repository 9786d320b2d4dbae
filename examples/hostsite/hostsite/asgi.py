"""The example site's ASGI application: its Django app, wrapped with the chat's socket."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hostsite.settings")
django_asgi_app = get_asgi_application()

from chat.asgi import wrap  # noqa: E402  (after Django is set up: it imports models)

application = wrap(django_asgi_app)
