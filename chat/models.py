"""Rooms and their stored messages."""

from django.conf import settings
from django.db import models
from django.utils import timezone


class MsgType(models.IntegerChoices):
    """The tutorial's message types; the numbers are part of the wire protocol."""

    MESSAGE = 0, "message"
    WARNING = 1, "warning"
    ALERT = 2, "alert"
    MUTED = 3, "muted"
    ENTER = 4, "enter"
    LEAVE = 5, "leave"


# Posted messages are stored and numbered; enter/leave notices are ephemeral.
STORED_TYPES = frozenset({MsgType.MESSAGE, MsgType.WARNING, MsgType.ALERT, MsgType.MUTED})


class Room(models.Model):
    """A chat room. ``last_seq`` is the seq of its newest stored message."""

    title = models.CharField(max_length=255)
    staff_only = models.BooleanField(
        default=False, help_text="Only staff users may see and enter this room."
    )
    last_seq = models.PositiveBigIntegerField(default=0, editable=False)
    created = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["title", "id"]

    def __str__(self) -> str:
        return self.title


class Message(models.Model):
    """A stored message. ``seq`` numbers the room's messages 1, 2, 3, ... with no gap."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="messages")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    # Kept beside the author so history needs no join and survives the user's deletion.
    username = models.CharField(max_length=150)
    msg_type = models.PositiveSmallIntegerField(choices=MsgType.choices, default=MsgType.MESSAGE)
    text = models.TextField()
    seq = models.PositiveBigIntegerField()
    created = models.DateTimeField(default=timezone.now, db_index=True)
    # Deleted messages keep their row (a tombstone), so seq stays gap-free.
    deleted = models.BooleanField(default=False)

    class Meta:
        ordering = ["room_id", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["room", "seq"], name="chat_message_room_seq_uniq"),
        ]

    def __str__(self) -> str:
        return f"{self.room_id}#{self.seq} {self.username}: {self.text[:40]}"
