from django.apps import AppConfig


class ApiConfig(AppConfig):
    """Personal API tokens, bearer authentication, and the REST API."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "api"
    verbose_name = "API"
