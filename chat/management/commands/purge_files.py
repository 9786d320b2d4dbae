"""Remove attachments nobody can reach: never posted, post gone, or stored with no row."""

from typing import Any

from django.core.management.base import BaseCommand

from chat import conf, files


class Command(BaseCommand):
    """Meant for cron, e.g. hourly: ``python manage.py purge_files``."""

    help = (
        "Delete uploads not posted within CHAT_UPLOAD_ORPHAN_HOURS, attachments whose post "
        "is gone, and stored files under files/ that no attachment names (older than an hour)."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        """Purge, and say how many of each went."""
        purged = files.files_purge()
        hours = conf.CHAT_UPLOAD_ORPHAN_HOURS
        self.stdout.write(
            f"Deleted {purged.unposted} upload(s) not posted within {hours} hour(s), "
            f"{purged.unattached} whose post is gone and {purged.stray} stray stored file(s)."
        )
