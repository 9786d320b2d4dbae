"""Apply the retention setting: delete messages older than CHAT_RETENTION_DAYS."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from chat import conf, services


class Command(BaseCommand):
    """Meant for cron, e.g. daily: ``python manage.py purge_messages``."""

    help = "Delete messages older than CHAT_RETENTION_DAYS days (or --days). 0 keeps everything."

    def add_arguments(self, parser: CommandParser) -> None:
        """The command's options."""
        parser.add_argument("--days", type=int, default=None, help="Override CHAT_RETENTION_DAYS.")

    def handle(self, *args: Any, days: int | None, **options: Any) -> None:
        """Delete the messages older than the retention, and say how many."""
        days = conf.CHAT_RETENTION_DAYS if days is None else days
        if days < 0:
            raise CommandError("--days must be 0 (keep everything) or more.")
        if days == 0:
            self.stdout.write("Retention is off (0 days): nothing deleted.")
            return
        deleted = services.messages_purge(days=days)
        self.stdout.write(f"Deleted {deleted} message(s) older than {days} day(s).")
