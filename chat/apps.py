from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ChatConfig(AppConfig):
    """The multichat application: rooms, messages and the chat socket."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "chat"
    verbose_name = _("Chat")

    def ready(self) -> None:
        """Connect the auth hooks (chat/signals.py); register the system checks (chat/checks.py)."""
        from chat import checks, signals  # noqa: F401
