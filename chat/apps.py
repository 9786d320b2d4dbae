from django.apps import AppConfig


class ChatConfig(AppConfig):
    """The multichat application: rooms, messages and the chat socket."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "chat"

    def ready(self) -> None:
        """Connect the auth hooks (chat/signals.py)."""
        from chat import signals  # noqa: F401
