"""Pure predicates: who may enter a room, and who may post which message type."""

from django.contrib.auth.models import AbstractUser, AnonymousUser

from chat.models import MsgType

STAFF_TYPES = frozenset({MsgType.WARNING, MsgType.ALERT, MsgType.MUTED})
SOCKET_POSTABLE_TYPES = frozenset({MsgType.MESSAGE}) | STAFF_TYPES


def can_enter(user: AbstractUser | AnonymousUser, *, staff_only: bool) -> bool:
    """True if ``user`` may see and enter a room with this ``staff_only`` flag."""
    if not user.is_authenticated or not user.is_active:
        return False
    return user.is_staff or not staff_only


def can_post_type(user: AbstractUser | AnonymousUser, msg_type: int) -> bool:
    """True if ``user`` may post a message of ``msg_type`` (warnings and alerts: staff only)."""
    if msg_type == MsgType.MESSAGE:
        return True
    return msg_type in STAFF_TYPES and bool(user.is_staff)
