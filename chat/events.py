"""Room events: group names, frames built from messages, and publishing.

An event is encoded once, here; every member's consumer sends the same text.
Publishing happens only after the transaction that stored the message
commits (``transaction.on_commit``), so nobody is told of a message that a
rollback then takes back.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from functools import partial

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from chat import protocol
from chat.models import Message

log = logging.getLogger(__name__)

EVENT_TYPE = "room.event"  # dispatched to ChatConsumer.room_event


def room_group(room_id: int) -> str:
    """The channel-layer group of a room's subscribed sockets."""
    return f"chat.room.{room_id}"


def message_event(message: Message) -> protocol.MessageEvent:
    """The frame of a stored message (a tombstone if it was deleted)."""
    return protocol.MessageEvent(
        msg_type=message.msg_type,
        room=message.room_id,
        username=message.username,
        message="" if message.deleted else message.text,
        ts=iso_utc(message.created),
        seq=message.seq,
        deleted=message.deleted,
    )


def iso_utc(when: datetime) -> str:
    """``when`` as ISO 8601 in UTC with milliseconds, e.g. 2026-11-24T18:20:16.123Z."""
    utc = when.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def _group_send(room_id: int, text: str, seq: int | None) -> None:
    layer = get_channel_layer()
    event = {"type": EVENT_TYPE, "room": room_id, "seq": seq, "text": text}
    try:
        async_to_sync(layer.group_send)(room_group(room_id), event)
    except Exception:
        # The message (if any) is stored; members that missed this event
        # recover it by seq from the database (gap fill, or join with since).
        log.exception("Could not publish an event to room %s (seq %s)", room_id, seq)


def publish_on_commit(room_id: int, frame: protocol.Frame, *, seq: int | None = None) -> None:
    """Encode ``frame`` once and send it to the room's members after the commit."""
    transaction.on_commit(partial(_group_send, room_id, protocol.encode(frame), seq))
