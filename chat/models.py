"""Rooms and their stored messages."""

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class MsgType(models.IntegerChoices):
    """The tutorial's message types; the numbers are part of the wire protocol, the labels UI."""

    MESSAGE = 0, _("message")
    WARNING = 1, _("warning")
    ALERT = 2, _("alert")
    MUTED = 3, _("muted")
    ENTER = 4, _("enter")
    LEAVE = 5, _("leave")


# Posted messages are stored and numbered; enter/leave notices are ephemeral.
STORED_TYPES = frozenset({MsgType.MESSAGE, MsgType.WARNING, MsgType.ALERT, MsgType.MUTED})


class RoomKind(models.TextChoices):
    """A room everyone (or staff) may find, or a direct conversation between its members."""

    ROOM = "room", _("room")
    DIRECT = "direct", _("direct conversation")


class Room(models.Model):
    """A chat room, or a direct conversation (``kind``).

    ``last_seq`` is the seq of the newest event in its stream: a post, or a
    change to one (an edit, a deletion, a reaction; see Change). ``posts``
    counts the posts alone (deleted ones too): unread = ``posts`` minus the
    reader's ``ReadPosition.posts``, so a reaction is never "unread".
    """

    title = models.CharField(_("title"), max_length=255)
    kind = models.CharField(
        _("kind"), max_length=10, choices=RoomKind.choices, default=RoomKind.ROOM,
        db_default=RoomKind.ROOM,
    )  # fmt: skip
    # A direct conversation's member ids, sorted and comma-separated: one per set of people.
    direct_key = models.CharField(
        max_length=200, null=True, blank=True, unique=True, editable=False
    )
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        through="RoomMember",
        related_name="member_of",
        blank=True,
        verbose_name=_("members"),
    )
    posts = models.PositiveBigIntegerField(_("posts"), default=0, db_default=0, editable=False)
    staff_only = models.BooleanField(
        _("staff only"), default=False, help_text=_("Only staff users may see and enter this room.")
    )
    last_seq = models.PositiveBigIntegerField(_("last seq"), default=0, editable=False)
    created = models.DateTimeField(_("created"), default=timezone.now, editable=False)
    # Who made it (chat.rooms.room_create): they may rename it. None: made by staff in the admin.
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="rooms_created",
        verbose_name=_("created by"),
    )

    class Meta:
        ordering = ["title", "id"]
        verbose_name = _("room")
        verbose_name_plural = _("rooms")

    def __str__(self) -> str:
        return self.title


class Message(models.Model):
    """A stored message. ``seq`` numbers the room's messages 1, 2, 3, ... with no gap."""

    room = models.ForeignKey(
        Room, on_delete=models.CASCADE, related_name="messages", verbose_name=_("room")
    )
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        verbose_name=_("author"),
    )
    # Kept beside the author so history needs no join and survives the user's deletion.
    username = models.CharField(_("username"), max_length=150)
    msg_type = models.PositiveSmallIntegerField(
        _("type"), choices=MsgType.choices, default=MsgType.MESSAGE
    )
    text = models.TextField(_("text"))
    seq = models.PositiveBigIntegerField(_("seq"))
    created = models.DateTimeField(_("created"), default=timezone.now, db_index=True)
    # Deleted messages keep their row (a tombstone), so seq stays gap-free.
    deleted = models.BooleanField(_("deleted"), default=False)
    # ``@room`` by staff: it mentions everyone who may enter the room, without a row each.
    mentions_room = models.BooleanField(default=False, db_default=False)
    # The post's place among the room's posts (1, 2, 3, ...); seq also counts changes.
    num = models.PositiveBigIntegerField(default=0, db_default=0)
    # The text rendered once, when stored (chat.markup); "" when it is plain text.
    html = models.TextField(blank=True, default="", db_default="")
    edited = models.DateTimeField(_("edited"), null=True, blank=True)
    # The seq of the post in the same room that this one answers.
    reply_to = models.PositiveBigIntegerField(_("reply to"), null=True, blank=True)
    # Its attachments' descriptors as JSON (chat.files.descriptors), "" when none: written
    # once when posted, so history and fan-out build the frames' ``files`` with no join.
    files = models.TextField(blank=True, default="", db_default="", editable=False)

    class Meta:
        ordering = ["room_id", "seq"]
        verbose_name = _("message")
        verbose_name_plural = _("messages")
        constraints = [
            models.UniqueConstraint(fields=["room", "seq"], name="chat_message_room_seq_uniq"),
        ]
        indexes = [
            # The few ``@room`` messages, read for every unread-mention count (a partial index).
            models.Index(
                fields=["room", "seq"],
                condition=models.Q(mentions_room=True),
                name="chat_message_room_mention",
            ),
            # Search's author filter (chat.search), newest first: the author's posts by id.
            models.Index(fields=["username", "id"], name="chat_message_username_id"),
        ]

    # Not stored: the kind of the room, as the statement that stored the post read it
    # (chat.services), so what follows a post in a direct conversation costs rooms nothing.
    room_kind: str = ""

    def __str__(self) -> str:
        return f"{self.room_id}#{self.seq} {self.username}: {self.text[:40]}"


class ReadPosition(models.Model):
    """The highest seq a user has read in a room; it never moves back (chat.services.read_mark)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    room = models.ForeignKey(Room, on_delete=models.CASCADE)
    seq = models.PositiveBigIntegerField(default=0)
    # Room.posts as of ``seq``: unread = Room.posts - posts.
    posts = models.PositiveBigIntegerField(default=0, db_default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "room"], name="chat_readposition_user_room_uniq"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} read {self.room_id} up to {self.seq}"


class Mention(models.Model):
    """``@username`` in a stored message: one row per mentioned user (``@room`` is a flag instead).

    ``seq`` is the message's, kept here so the unread count (seq above the
    user's read position) needs no join with the messages.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    room = models.ForeignKey(Room, on_delete=models.CASCADE)
    message = models.ForeignKey(Message, on_delete=models.CASCADE)
    seq = models.PositiveBigIntegerField()

    class Meta:
        indexes = [
            models.Index(fields=["user", "room", "seq"], name="chat_mention_user_room_seq"),
            models.Index(fields=["user", "message"], name="chat_mention_user_message"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} in {self.room_id}#{self.seq}"


class RoomLeft(models.Model):
    """A user left a room (in the Slack sense): it is out of their room list until they rejoin.

    A row of its own, not a flag on ReadPosition: read positions are upserted
    by raw SQL on every post and read, and "left" is a different, rare fact.
    Issue 16's real memberships may replace it.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    room = models.ForeignKey(Room, on_delete=models.CASCADE)
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "room"], name="chat_roomleft_user_room_uniq"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} left {self.room_id}"


class RoomMember(models.Model):
    """A member of a direct conversation: only members may see, enter or search it."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["room", "user"], name="chat_roommember_room_user_uniq"),
        ]
        indexes = [models.Index(fields=["user", "room"], name="chat_roommember_user_room")]

    def __str__(self) -> str:
        return f"{self.user_id} in {self.room_id}"


class Reaction(models.Model):
    """One person's emoji on one post; the post's reactions are these rows, grouped by emoji."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="reactions")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    # Kept beside the user, as on Message: reactions are listed with names, no join.
    username = models.CharField(max_length=150)
    emoji = models.CharField(max_length=32)
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["message_id", "created", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["message", "user", "emoji"], name="chat_reaction_message_user_emoji_uniq"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.username} {self.emoji} on {self.message_id}"


class ChangeKind(models.IntegerChoices):
    """What a Change did to its post."""

    EDIT = 1, _("edit")
    DELETE = 2, _("delete")
    REACT = 3, _("reaction")


class Change(models.Model):
    """A change to a stored post (edit, delete, reaction), numbered in the room's seq stream.

    It takes the room's next seq like a post, so a socket that resumes with
    ``since`` (or fills a gap) gets the changes it missed in the same order,
    exactly once: the replay merges Message and Change rows by seq. ``frame``
    is the change's frame, encoded once when stored, with the post's state
    after the change (so applying it twice, or late, is harmless).
    """

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="changes")
    seq = models.PositiveBigIntegerField()
    target = models.PositiveBigIntegerField()  # the changed post's seq
    kind = models.PositiveSmallIntegerField(choices=ChangeKind.choices)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    frame = models.TextField()
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["room_id", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["room", "seq"], name="chat_change_room_seq_uniq"),
        ]

    def __str__(self) -> str:
        return f"{self.room_id}#{self.seq} {self.get_kind_display()} of #{self.target}"


class Attachment(models.Model):
    """An uploaded file (chat.files): its uploader's alone until posted with a message.

    ``key`` is the random id in its URLs and in the ``files`` of a post. The
    bytes live in the files storage (``storage_name``, and ``thumb_name`` for
    an image's thumbnail); ``content_type`` is the type sniffed from the bytes.
    """

    key = models.CharField(max_length=32, unique=True, editable=False)
    uploader = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="attachments",
        verbose_name=_("uploader"),
    )
    message = models.ForeignKey(
        Message,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="attachments",
        verbose_name=_("message"),
    )
    name = models.CharField(_("name"), max_length=255)
    content_type = models.CharField(_("type"), max_length=255)
    size = models.PositiveBigIntegerField(_("size"))
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    storage_name = models.CharField(max_length=1024)
    thumb_name = models.CharField(max_length=1024, blank=True, default="")
    created = models.DateTimeField(_("created"), default=timezone.now)
    posted = models.DateTimeField(_("posted"), null=True, blank=True)

    class Meta:
        ordering = ["created", "id"]
        verbose_name = _("attachment")
        verbose_name_plural = _("attachments")
        indexes = [
            # The upload quota: one uploader's uploads of the last 24 hours.
            models.Index(fields=["uploader", "created"], name="chat_attach_uploader_created"),
        ]

    def __str__(self) -> str:
        return self.name
