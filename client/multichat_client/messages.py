"""A room's posts and the changes to them, as the client hands them on (standard library only).

``multichat_client.client`` (the socket) and the CLI's REST commands both build these
from the server's frames.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from multichat_client.files import FileInfo, files_of


@dataclass(frozen=True)
class Reaction:
    """One emoji on a post, and who put it there (in the order they did)."""

    emoji: str
    users: tuple[str, ...]


def _reactions(entries: list[dict[str, Any]]) -> tuple[Reaction, ...]:
    return tuple(Reaction(emoji=e["emoji"], users=tuple(e["users"])) for e in entries)


def _reaction_frames(reactions: tuple[Reaction, ...]) -> list[dict[str, Any]]:
    return [{"emoji": r.emoji, "users": list(r.users)} for r in reactions]


@dataclass(frozen=True)
class Message:
    """A room event. Stored posts have a ``seq``; enter/leave notices (4, 5) have None.

    ``html`` is the text rendered by the server ("" : show ``message`` as plain
    text); ``edited`` when it was last edited; ``reply_to`` the seq of the post
    it answers; ``deleted`` a tombstone (no text). A post's later edits,
    deletion and reactions arrive as Change events (``Change.apply`` folds one in).
    ``files``: its attachments (FileInfo), in upload order; a tombstone has none.
    """

    room: int
    seq: int | None
    msg_type: int
    username: str
    message: str
    ts: str
    html: str = ""  # the server's sanitized HTML when the text has formatting; "" for plain text
    deleted: bool = False
    edited: str | None = None
    reply_to: int | None = None
    reactions: tuple[Reaction, ...] = ()
    files: tuple[FileInfo, ...] = ()

    @classmethod
    def from_frame(cls, frame: dict[str, Any]) -> Message:
        """The message in a server frame."""
        return cls(
            room=frame["room"],
            seq=frame.get("seq"),
            msg_type=frame["msg_type"],
            username=frame["username"],
            message=frame["message"],
            ts=frame["ts"],
            html=frame.get("html", ""),
            deleted=frame.get("deleted", False),
            edited=frame.get("edited"),
            reply_to=frame.get("reply_to"),
            reactions=_reactions(frame.get("reactions", [])),
            files=files_of(frame),
        )

    def to_frame(self) -> dict[str, Any]:
        """The message as the server's frame (a dict ready for json.dumps)."""
        frame: dict[str, Any] = {
            "msg_type": self.msg_type,
            "room": self.room,
            "username": self.username,
            "message": self.message,
            "ts": self.ts,
        }
        if self.seq is not None:
            frame["seq"] = self.seq
        if self.html:
            frame["html"] = self.html
        if self.deleted:
            frame["deleted"] = True
        if self.edited is not None:
            frame["edited"] = self.edited
        if self.reply_to is not None:
            frame["reply_to"] = self.reply_to
        if self.reactions:
            frame["reactions"] = _reaction_frames(self.reactions)
        if self.files:
            frame["files"] = [f.to_frame() for f in self.files]
        return frame


@dataclass(frozen=True)
class Change:
    """A change to post ``target`` of ``room``, numbered ``seq`` in the room's stream.

    ``change`` is "edit" (new ``message``, ``html``, ``edited``), "delete" (the
    post becomes a tombstone) or "react" (``reactions``: the post's whole list
    after it). ``username`` made the change. Never shown as a message, never
    unread: apply it to the post if you show it (``apply``), else ignore it.
    """

    room: int
    seq: int
    change: str
    target: int
    username: str
    ts: str
    message: str | None = None
    html: str = ""
    edited: str | None = None
    reactions: tuple[Reaction, ...] | None = None

    @classmethod
    def from_frame(cls, frame: dict[str, Any]) -> Change:
        """The change in a server frame."""
        reactions = frame.get("reactions")
        return cls(
            room=frame["room"],
            seq=frame["seq"],
            change=frame["change"],
            target=frame["target"],
            username=frame["username"],
            ts=frame["ts"],
            message=frame.get("message"),
            html=frame.get("html", ""),
            edited=frame.get("edited"),
            reactions=None if reactions is None else _reactions(reactions),
        )

    def to_frame(self) -> dict[str, Any]:
        """The change as the server's frame (a dict ready for json.dumps)."""
        frame: dict[str, Any] = {
            "change": self.change,
            "room": self.room,
            "seq": self.seq,
            "target": self.target,
            "username": self.username,
            "ts": self.ts,
        }
        if self.message is not None:
            frame["message"] = self.message
        if self.html:
            frame["html"] = self.html
        if self.edited is not None:
            frame["edited"] = self.edited
        if self.reactions is not None:
            frame["reactions"] = _reaction_frames(self.reactions)
        return frame

    def apply(self, post: Message) -> Message:
        """``post`` as this change leaves it (``post`` itself if it is not the target)."""
        if post.room != self.room or post.seq != self.target:
            return post
        if self.change == "delete":
            return replace(
                post, message="", html="", edited=None, deleted=True, reactions=(), files=()
            )
        if post.deleted:  # a tombstone stays one (a replay may hold edits made before)
            return post
        if self.change == "edit" and self.message is not None:
            return replace(post, message=self.message, html=self.html, edited=self.edited)
        if self.change == "react" and self.reactions is not None:
            return replace(post, reactions=self.reactions)
        return post
