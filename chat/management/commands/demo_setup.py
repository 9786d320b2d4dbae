"""Create a demo admin and a few rooms on first run, and say how to log in."""

import secrets
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser

from chat.models import Room
from chat.permissions import Account

DEMO_ROOMS = [("General", False), ("Random", False), ("Staff lounge", True)]


class Command(BaseCommand):
    """Idempotent: never changes a user or room that already exists."""

    help = "Create a demo admin and demo rooms if the database has none, then print how to log in."

    def add_arguments(self, parser: CommandParser) -> None:
        """The command's options."""
        parser.add_argument(
            "--url", default="http://127.0.0.1:8000/", help="Where the chat is served."
        )
        parser.add_argument("--username", default="admin")

    def handle(self, *args: Any, url: str, username: str, **options: Any) -> None:
        """Create what is missing, then print where to open the chat and how to log in."""
        User = get_user_model()
        credentials = settings.DATA_DIR / "demo_credentials"
        if not User.objects.exists():
            password = secrets.token_urlsafe(12)
            User.objects.create_superuser(username=username, email="", password=password)
            credentials.parent.mkdir(parents=True, exist_ok=True)
            credentials.touch(mode=0o600)
            credentials.write_text(f"{username}\n{password}\n")
            self.stdout.write(f"Created the demo admin '{username}'.")
        if not Room.objects.exists():
            Room.objects.bulk_create(Room(title=t, staff_only=s) for t, s in DEMO_ROOMS)
            self.stdout.write(f"Created {len(DEMO_ROOMS)} demo rooms.")

        self.stdout.write("")
        self.stdout.write(self.style.SUCCESS(f"multichat is starting: open {url}"))
        login = self._saved_login(credentials, User)
        if login:
            self.stdout.write(f"Log in as {login[0]} with password {login[1]}")
        else:
            self.stdout.write(
                "Log in with an existing account. To make one: python manage.py createsuperuser"
            )
        self.stdout.write(f"Rooms and users are managed at {url}admin/")
        self.stdout.write("")

    def _saved_login(self, path: Path, User: type[Account]) -> tuple[str, str] | None:
        """The demo login, while it still works (it is not printed once the password changes)."""
        try:
            username, password = path.read_text().split("\n")[:2]
        except (OSError, ValueError):
            return None
        user = User.objects.filter(username=username).first()
        if user is None or not user.check_password(password):
            return None
        return username, password
