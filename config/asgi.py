"""ASGI entry point: HTTP goes to Django, /chat/stream/ to the chat consumer (chat/asgi.py)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_asgi_app = get_asgi_application()

# Imported after Django is set up: these modules import models.
from chat.asgi import wrap  # noqa: E402

application = wrap(django_asgi_app)
