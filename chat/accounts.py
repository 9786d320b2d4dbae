"""The host's user model as the chat reads it: by its USERNAME_FIELD, never a ``username`` column.

The standalone server uses Django's own user (``username``); a host project may name its
users by email or anything else (AUTH_USER_MODEL, docs/embedding.md). Every lookup or ordering
by a user's name goes through these helpers.
"""

from typing import Any

from django.contrib.auth import get_user_model


def name_field() -> str:
    """The user model's name column (USERNAME_FIELD): ``username`` for Django's own user."""
    return str(get_user_model().USERNAME_FIELD)


def by_name(prefix: str = "", lookup: str = "") -> str:
    """The ORM path of a user's name: ``by_name("user__", "__in")`` is ``user__username__in``."""
    return f"{prefix}{name_field()}{lookup}"


def named(names: Any) -> dict[str, Any]:
    """Filter keywords for the users whose names are in ``names``."""
    return {by_name(lookup="__in"): names}
