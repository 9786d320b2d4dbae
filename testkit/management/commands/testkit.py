"""``manage.py testkit ACTION --json PARAMS``: make test or benchmark data in this database.

Installed only with config.test_settings and testkit.settings, never with
config.settings: it makes users with known passwords. LiveServer and the
benchmark run it against their servers' databases (testkit.live). The
result is printed as one line of JSON.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from testkit import factories


def _user(username: str, password: str = factories.PASSWORD, staff: bool = False) -> int:
    """Create a user; return its id."""
    return factories.create_user(username, password=password, staff=staff).pk


def _room(title: str, staff_only: bool = False) -> int:
    """Create a room; return its id."""
    return factories.create_room(title, staff_only=staff_only).pk


def _batch(calls: list[tuple[str, dict[str, Any]]]) -> list[object]:
    """Run several actions in order, in this one process; return their results."""
    return [run(action, params) for action, params in calls]


# Each action takes its parameters as keywords and returns something JSON can hold.
ACTIONS: dict[str, Callable[..., object]] = {
    "batch": _batch,
    "user": _user,
    "room": _room,
    "token": factories.create_token,
    "revoke-token": factories.revoke_token,
    "post": factories.post_messages,
    "send": factories.send_messages,
    "date-messages": factories.date_messages,
    "logged-in-users": factories.create_logged_in_users,
    "rooms": factories.create_rooms,
    "grant": factories.grant,
}


def run(action: str, params: dict[str, Any]) -> object:
    """Run one action with its parameters."""
    if action not in ACTIONS:
        raise CommandError(f"Unknown action {action!r}: use one of {', '.join(ACTIONS)}.")
    function = ACTIONS[action]
    try:
        inspect.signature(function).bind(**params)
    except TypeError as error:  # a missing or unknown parameter
        raise CommandError(f"{action}: {error}") from error
    return function(**params)


class Command(BaseCommand):
    """Run one action (``batch``: several, its PARAMS {"calls": [[ACTION, PARAMS], ...]})."""

    help = (
        "Test and benchmark data (users with known passwords, rooms, tokens, messages). "
        f"Actions: {', '.join(ACTIONS)}."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        """ACTION and its --json parameters."""
        parser.add_argument("action")
        parser.add_argument(
            "--json",
            dest="params",
            default="{}",
            help="the action's parameters as a JSON object",
        )

    def handle(self, *args: Any, action: str, params: str, **options: Any) -> None:
        """Print the result as one line of JSON."""
        try:
            given = json.loads(params)
        except ValueError as error:
            raise CommandError(f"--json is not JSON: {error}") from error
        if not isinstance(given, dict):
            raise CommandError("--json takes a JSON object: the action's parameters by name.")
        self.stdout.write(json.dumps(run(action, given)))
