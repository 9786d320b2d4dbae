from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ApiConfig(AppConfig):
    """Personal API tokens, bearer authentication, and the REST API."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "api"
    verbose_name = _("API")
