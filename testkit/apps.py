"""The testkit app: only config.test_settings and testkit.settings install it, never production."""

from django.apps import AppConfig


class TestkitConfig(AppConfig):
    """Brings ``manage.py testkit`` (users with known passwords, rooms, tokens, messages)."""

    name = "testkit"
    verbose_name = "test and benchmark kit"
