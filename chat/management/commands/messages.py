"""Refresh the translation catalogues (chat/locale/*/LC_MESSAGES) from the code; compile them."""

from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser

# Not UI strings: the virtualenv, data, benchmark, tests and build output.
IGNORE = [".venv/*", "var/*", "bench/*", "*/tests/*", "test-artifacts/*", "node_modules/*"]


class Command(BaseCommand):
    """``manage.py messages``: what scripts/messages runs (needs GNU gettext)."""

    help = "Extract every UI string into each language's .po files and compile the .mo files."

    def add_arguments(self, parser: CommandParser) -> None:
        """--no-compile leaves the .mo files alone (the catalogue test only extracts)."""
        parser.add_argument("--no-compile", action="store_true", help="Only extract.")

    def handle(self, *args: Any, **options: Any) -> None:
        """makemessages for the templates and Python (django) and the UI modules (djangojs)."""
        for domain in ("django", "djangojs"):
            call_command(
                "makemessages",
                all=True,
                domain=domain,
                no_obsolete=True,
                no_location=True,
                ignore_patterns=IGNORE,
                verbosity=0,
            )
        if not options["no_compile"]:
            call_command("compilemessages", ignore_patterns=IGNORE, verbosity=0)
