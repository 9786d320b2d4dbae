from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """The example site's own accounts: users log in by email."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "accounts"
