"""Make an invitation link from the command line and print it."""

from __future__ import annotations

import os
import re
from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.urls import reverse
from django.utils import timezone

from people import services

_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str) -> timedelta | None:
    """``7d``, ``12h``, ``30m``, ``2w`` as a timedelta; ``never`` (or ``0``) as None."""
    value = text.strip().lower()
    if value in ("never", "0"):
        return None
    match = re.fullmatch(r"(\d+)\s*([mhdw])", value)
    if match is None or int(match[1]) == 0:
        raise CommandError(f"--expires {text!r}: use e.g. 30m, 12h, 7d, 2w, or never.")
    return timedelta(**{_UNITS[match[2]]: int(match[1])})


def default_url() -> str:
    """Where scripts/run serves the chat: http://HOST:PORT/ (127.0.0.1:8000 by default)."""
    host = os.environ.get("HOST") or "127.0.0.1"
    return f"http://{host}:{os.environ.get('PORT') or 8000}/"


class Command(BaseCommand):
    """Print one new invitation link; only a hash of it is stored."""

    help = "Create an invitation link (single or multi use, expiring) and print it."

    def add_arguments(self, parser: CommandParser) -> None:
        """The command's options."""
        parser.add_argument(
            "--uses", type=int, default=1, help="How many people may sign up with it (default 1)."
        )
        parser.add_argument(
            "--expires", default="7d", help="How long it works: 30m, 12h, 7d, 2w or never (7d)."
        )
        parser.add_argument("--note", default="", help="Who or what the link is for.")
        parser.add_argument(
            "--url",
            default=None,
            help="The chat's public address (default http://$HOST:$PORT/, as scripts/run).",
        )

    def handle(
        self, *args: Any, uses: int, expires: str, note: str, url: str | None, **options: Any
    ) -> None:
        """Create the invitation and print its link (and only the link, on stdout)."""
        if uses < 1:
            raise CommandError("--uses must be 1 or more.")
        lasts = parse_duration(expires)
        invitation, secret = services.invitation_create(
            created_by=None,
            max_uses=uses,
            expires_at=timezone.now() + lasts if lasts else None,
            note=note,
        )
        base = (url or default_url()).rstrip("/")
        self.stdout.write(f"{base}{reverse('signup-invited', args=[secret])}")
        until = f"until {invitation.expires_at:%Y-%m-%d %H:%M} UTC" if lasts else "with no expiry"
        people = "person" if uses == 1 else "people"
        self.stderr.write(f"It signs up {uses} {people}, {until}. It is shown this once.")
