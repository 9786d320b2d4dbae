from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PeopleConfig(AppConfig):
    """People: invitations and sign-up, display names and avatars."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "people"
    verbose_name = _("People")
