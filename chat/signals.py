"""Hooks into Django's own saves: forward user and room changes, and logouts, to the services.

contrib.auth saves users from many places (the admin, changepassword,
createsuperuser, the shell) and logs out from its own view; rooms are saved
by the services, the admin and management commands. Signals are the one
place that sees all of them. They only call a service.
"""

from collections.abc import Iterable

from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_out
from django.db.models.signals import post_delete, post_save, pre_delete
from django.dispatch import receiver
from django.http import HttpRequest

from chat import rooms, services
from chat.models import Room
from chat.permissions import Account, RoomAccess


@receiver(post_save, sender=get_user_model())
@receiver(post_delete, sender=get_user_model())
def user_saved_or_deleted(
    sender: type[Account],
    instance: Account,
    update_fields: Iterable[str] | None = None,
    **kwargs: object,
) -> None:
    """Re-check the user's open sockets (demoted, deactivated, new password, deleted)."""
    if update_fields is not None and set(update_fields) <= {"last_login"}:
        return  # logging in somewhere else changes nothing for open sockets
    services.user_access_changed(user_id=instance.pk)


@receiver(user_logged_out)
def logged_out(
    sender: type[Account | None], request: HttpRequest, user: Account | None, **kwargs: object
) -> None:
    """Close the sockets opened with the session that just logged out."""
    session_key = getattr(getattr(request, "session", None), "session_key", None)
    if user is not None and session_key:
        services.session_ended(user_id=user.pk, session_key=session_key)


@receiver(post_save, sender=Room)
def room_saved(
    sender: type[Room], instance: Room, created: bool, raw: bool = False, **kwargs: object
) -> None:
    """Every connected room list learns of the new or changed room (chat.rooms)."""
    if not raw:  # loaddata: no one to tell about fixtures
        rooms.room_listing_saved(room=instance, created=created)


@receiver(pre_delete, sender=Room)
def room_deleting(sender: type[Room], instance: Room, **kwargs: object) -> None:
    """Read who may enter the room before its members' rows go with it."""
    instance._multichat_access = RoomAccess.of(instance)  # type: ignore[attr-defined]


@receiver(post_delete, sender=Room)
def room_deleted(sender: type[Room], instance: Room, **kwargs: object) -> None:
    """Every connected room list drops the deleted room (chat.rooms)."""
    access = getattr(instance, "_multichat_access", None) or RoomAccess.of(instance)
    rooms.room_listing_deleted(room_id=instance.pk, access=access)
