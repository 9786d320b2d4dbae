from django.apps import AppConfig


class PeopleConfig(AppConfig):
    """People: invitations and sign-up, display names and avatars."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "people"
