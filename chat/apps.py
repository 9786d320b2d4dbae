from django.apps import AppConfig


class ChatConfig(AppConfig):
    """The multichat application: rooms, messages and the chat socket."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "chat"
