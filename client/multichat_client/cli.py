"""The ``multichat`` command line: rooms, send (with files), edit, delete, react, history,
tail (which follows and resumes), mentions, search, whoami.

The server and token come from MULTICHAT_URL / MULTICHAT_TOKEN, else from
~/.config/multichat/config.toml (keys ``url`` and ``token``). Exit status:
0 done, 1 the server refused or could not be reached, 2 usage or configuration.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import urllib.parse
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from multichat_client import __version__
from multichat_client.config import Config, ConfigError, load_config
from multichat_client.errors import AuthError, ConnectionLost, MultichatError
from multichat_client.files import FileInfo, files_of, human_size
from multichat_client.messages import Message
from multichat_client.rest import RestClient

if TYPE_CHECKING:
    from multichat_client.client import Change, Reaction

TYPES = {"message": 0, "warning": 1, "alert": 2, "muted": 3}
LABELS = {1: "warning", 2: "alert", 3: "muted", 4: "enter", 5: "leave"}


class UsageError(Exception):
    """The command line names something that does not exist (exit status 2)."""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(
        prog="multichat",
        description="Talk to a multichat server from the command line.",
        epilog="The token comes from MULTICHAT_TOKEN or the config file "
        "(~/.config/multichat/config.toml, or MULTICHAT_CONFIG); create one at <url>/tokens/.",
    )
    parser.add_argument("--url", help="the server's base URL (default: MULTICHAT_URL, the config)")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    rooms = commands.add_parser("rooms", help="list your rooms; create or rename one")
    rooms.add_argument("--json", action="store_true", help="one JSON object per room")
    rooms.add_argument("--all", action="store_true", help="also the rooms you left")
    actions = rooms.add_subparsers(dest="action", metavar="ACTION")
    create = actions.add_parser("create", help="create a room")
    create.add_argument("title", metavar="TITLE")
    create.add_argument("--staff-only", action="store_true", help="staff: only staff may enter")
    create.add_argument("--json", action="store_true", help="print the room as JSON")
    rename = actions.add_parser("rename", help="rename a room you created (staff: any)")
    rename.add_argument("room", metavar="ROOM", help="the room's id or title")
    rename.add_argument("title", metavar="TITLE", help="the new title")
    rename.add_argument("--json", action="store_true", help="print the room as JSON")

    leave = commands.add_parser("leave", help="take a room out of your list (every device)")
    leave.add_argument("room", metavar="ROOM", help="the room's id or title")
    join = commands.add_parser("join", help="put a room you left back in your list")
    join.add_argument("room", metavar="ROOM", help="the room's id or title")

    dm = commands.add_parser("dm", help="open a direct conversation; print its room id")
    dm.add_argument("users", metavar="USER", nargs="+", help="the other people, by username")
    dm.add_argument("-m", "--message", metavar="TEXT", help="also send TEXT to it")
    dm.add_argument("--json", action="store_true", help="print the room (and message) as JSON")

    send = commands.add_parser("send", help="post a message to a room")
    send.add_argument("room", metavar="ROOM", help="the room's id or title")
    send.add_argument(
        "text",
        metavar="TEXT",
        nargs="?",
        help="the text (- : stdin; the default, or none with --file)",
    )
    send.add_argument(
        "--file",
        action="append",
        default=[],
        metavar="PATH",
        dest="files",
        help="attach this file (repeat for several); TEXT may then be left out",
    )
    send.add_argument("--type", choices=TYPES, default="message", help="staff: warning, alert")
    send.add_argument(
        "--reply-to", type=int, metavar="SEQ", help="answer the room's post #SEQ (a reply)"
    )
    send.add_argument("--json", action="store_true", help="print the stored message as JSON")

    edit = commands.add_parser("edit", help="replace the text of one of your posts")
    edit.add_argument("room", metavar="ROOM", help="the room's id or title")
    edit.add_argument("seq", type=int, metavar="SEQ", help="the post's seq (#SEQ in tail)")
    edit.add_argument("text", metavar="TEXT", nargs="?", default="-", help="new text (- : stdin)")
    edit.add_argument("--json", action="store_true", help="print the server's answer as JSON")

    delete = commands.add_parser("delete", help="delete one of your posts (staff: any)")
    delete.add_argument("room", metavar="ROOM", help="the room's id or title")
    delete.add_argument("seq", type=int, metavar="SEQ", help="the post's seq (#SEQ in tail)")
    delete.add_argument("--json", action="store_true", help="print the server's answer as JSON")

    react = commands.add_parser("react", help="put an emoji on a post, or take yours off")
    react.add_argument("room", metavar="ROOM", help="the room's id or title")
    react.add_argument("seq", type=int, metavar="SEQ", help="the post's seq (#SEQ in tail)")
    react.add_argument("emoji", metavar="EMOJI", help="one emoji, e.g. 👍")
    react.add_argument("--off", action="store_true", help="take your EMOJI off the post")
    react.add_argument("--json", action="store_true", help="print the server's answer as JSON")

    history = commands.add_parser("history", help="print a room's last messages, oldest first")
    history.add_argument("room", metavar="ROOM", help="the room's id or title")
    history.add_argument("-n", "--limit", type=int, default=20, metavar="N", help="the last N (20)")
    history.add_argument("--before", type=int, metavar="SEQ", help="those before seq SEQ")
    history.add_argument("--json", action="store_true", help="one JSON message frame per line")

    tail = commands.add_parser("tail", help="print a room's messages as they arrive")
    tail.add_argument("room", metavar="ROOM", help="the room's id or title")
    start = tail.add_mutually_exclusive_group()
    start.add_argument("--since", type=int, metavar="N", help="start after seq N (0: everything)")
    start.add_argument(
        "-n", "--lines", type=int, default=10, metavar="N", help="first show the last N (10)"
    )
    tail.add_argument(
        "--json", action="store_true", help="one JSON frame per line (messages and changes)"
    )
    tail.add_argument("--notices", action="store_true", help="also show enter/leave notices")
    tail.add_argument(
        "--max-delay",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="longest wait between reconnection attempts (30)",
    )

    mentions = commands.add_parser("mentions", help="list the messages that mention you")
    mentions.add_argument(
        "-n", "--limit", type=int, default=20, metavar="N", help="the newest N (20)"
    )
    mentions.add_argument("--json", action="store_true", help="one JSON mention frame per line")

    find = commands.add_parser("search", help="search the messages of the rooms you may enter")
    find.add_argument("query", metavar="QUERY", help='words, "a phrase", -excluded, or')
    find.add_argument("--room", metavar="ROOM", help="only in this room (id or title)")
    find.add_argument("--author", metavar="USERNAME", help="only messages by this user")
    find.add_argument("--after", metavar="WHEN", help="only from this date (2026-11-29) or time")
    find.add_argument("--before", metavar="WHEN", help="only before this date or time")
    find.add_argument("-n", "--limit", type=int, default=20, metavar="N", help="the newest N (20)")
    find.add_argument("--json", action="store_true", help="one JSON result per line")

    commands.add_parser("whoami", help="show whose token this is")
    return parser


def resolve_room(rest: RestClient, name: str, *, left_too: bool = False) -> dict[str, Any]:
    """The room named by id or title (exact, then case-insensitive), from the rooms listing.

    ``left_too``: also the rooms the user left (to join one again).
    """
    rooms = rest.rooms(all=left_too)
    if name.isdigit():
        for room in rooms:
            if room["id"] == int(name):
                return room
    for matches in (
        [r for r in rooms if r["title"] == name],
        [r for r in rooms if r["title"].casefold() == name.casefold()],
    ):
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            ids = ", ".join(str(r["id"]) for r in matches)
            raise UsageError(f"several rooms are called {name!r} (ids {ids}): use the id")
    raise UsageError(f"no room {name!r} that you may enter; see `multichat rooms`")


def format_message(message: Message) -> str:
    """One line for a person: ``#12 18:20:16 alice: hello``; a reply ``bob ↳ #5: yes``.

    An edited post ends with ``(edited)``, one with reactions with ``[👍 2]``.
    """
    clock = message.ts[11:19]
    label = f"[{LABELS[message.msg_type]}] " if message.msg_type in LABELS else ""
    seq = f"#{message.seq}" if message.seq is not None else "--"
    reply = f" ↳ #{message.reply_to}" if message.reply_to is not None else ""
    text = "(deleted)" if message.deleted else message.message
    edited = " (edited)" if message.edited and not message.deleted else ""
    counts = ", ".join(f"{r.emoji} {len(r.users)}" for r in message.reactions)
    reactions = f"  [{counts}]" if counts else ""
    return f"{seq} {clock} {label}{message.username}{reply}: {text}{edited}{reactions}"


def file_lines(files: tuple[FileInfo, ...], base_url: str) -> list[str]:
    """One line per attachment, under its message: ``    file: shot.png (12.1 kB) URL``."""
    return [
        f"    file: {f.name} ({human_size(f.size)}) {urllib.parse.urljoin(base_url + '/', f.url)}"
        for f in files
    ]


def format_reactions(reactions: tuple[Reaction, ...]) -> str:
    """``👍 ann, bob; 🎉 cy``, or ``(none)``."""
    return "; ".join(f"{r.emoji} {', '.join(r.users)}" for r in reactions) or "(none)"


def format_change(change: Change) -> str:
    """One line for a person: ``#12 edited by ann: new text``, ``#12 deleted by ann``, ..."""
    if change.change == "edit":
        return f"#{change.target} edited by {change.username}: {change.message}"
    if change.change == "delete":
        return f"#{change.target} deleted by {change.username}"
    if change.change == "react":
        reactions = format_reactions(change.reactions or ())
        return f"#{change.target} reactions changed by {change.username}: {reactions}"
    return f"#{change.target} changed ({change.change}) by {change.username}"


def print_line(line: str, out: TextIO) -> None:
    """Print and flush, so a pipe sees each message at once."""
    out.write(line + "\n")
    out.flush()


def room_line(room: dict[str, Any]) -> str:
    """One room for a person: id, title, newest seq, and what is special about it."""
    staff = "  (staff only)" if room["staff_only"] and room.get("kind") != "direct" else ""
    if room.get("kind") == "direct":
        staff = "  (direct: " + ", ".join(room.get("members") or []) + ")"
    left = "  (left)" if room.get("left") else ""
    return f"{room['id']:>5}  {room['title']}  [{room['last_seq']}]{staff}{left}{unread_note(room)}"


def cmd_rooms(config: Config, args, out: TextIO) -> int:
    """multichat rooms [--all] | rooms create TITLE | rooms rename ROOM TITLE."""
    rest = RestClient(config.url, config.require_token())
    if args.action is not None:
        if args.action == "create":
            room = rest.create_room(args.title, staff_only=args.staff_only)
        else:
            room = rest.rename_room(resolve_room(rest, args.room)["id"], args.title)
        print_line(json.dumps(room) if args.json else room_line(room), out)
        return 0
    rooms = rest.rooms(all=args.all)
    for room in rooms:
        print_line(json.dumps(room) if args.json else room_line(room), out)
    if not rooms and not args.json:
        print_line("(no rooms)", out)
    return 0


def unread_note(room: dict[str, Any]) -> str:
    """``  (3 unread, 1 mention)``, or nothing when the room is read (or the server is older)."""
    unread, mentions = room.get("unread", 0), room.get("mentions", 0)
    parts = [f"{unread} unread"] if unread else []
    if mentions:
        parts.append(f"{mentions} mention{'s' if mentions > 1 else ''}")
    return f"  ({', '.join(parts)})" if parts else ""


def cmd_mentions(config: Config, args, out: TextIO) -> int:
    """multichat mentions: the newest first, with the room's title."""
    rest = RestClient(config.url, config.require_token())
    titles = {room["id"]: room["title"] for room in rest.rooms()}
    page = rest.mentions(limit=args.limit)
    for frame in page["mentions"]:
        if args.json:
            print_line(json.dumps(frame), out)
        else:
            where = titles.get(frame["mention"], f"room {frame['mention']}")
            clock = frame["ts"][:10] + " " + frame["ts"][11:19]
            line = f"{where} #{frame['seq']} {clock} {frame['username']}: {frame['message']}"
            print_line(line, out)
    if not page["mentions"] and not args.json:
        print_line("(no mentions)", out)
    return 0


def read_text(text: str) -> str:
    """The TEXT argument, or standard input for ``-``."""
    return sys.stdin.read().rstrip("\n") if text == "-" else text


class PostRefused(MultichatError):
    """The server refused a change to (or a reply to) a post: a sentence that names the post."""


def refused(exc: MultichatError, room: dict[str, Any], seq: int, doing: str) -> MultichatError:
    """``exc`` with a sentence naming the post, for the codes about a post; else ``exc``."""
    where = f"#{seq} in {room['title']}"
    if exc.code == "MESSAGE_INVALID":
        why = f"cannot {doing} {where}: there is no such post, or it was deleted"
    elif exc.code == "EDIT_DENIED":
        why = f"cannot {doing} {where}: it is not your post, or the time to change it is over"
    else:
        return exc
    return PostRefused(exc.code, f"{why} ({exc.code}: {exc.detail})", status=exc.status)


def cmd_search(config: Config, args, out: TextIO) -> int:
    """multichat search QUERY: the newest matches first, with room, seq, time and author."""
    rest = RestClient(config.url, config.require_token())
    room = None if args.room is None else resolve_room(rest, args.room)["id"]
    page = rest.search(
        args.query,
        room=room,
        author=args.author,
        after=args.after,
        before=args.before,
        limit=args.limit,
    )
    for result in page["search"]:
        if args.json:
            print_line(json.dumps(result), out)
        else:
            clock = result["ts"][:10] + " " + result["ts"][11:19]
            where = f"{result['title']} #{result['seq']}"
            print_line(f"{where} {clock} {result['username']}: {result['message']}", out)
    if not page["search"] and not args.json:
        print_line("(nothing found)", out)
    return 0


UPLOAD_REFUSALS = {
    "FILE_TOO_LARGE": "larger than the server accepts",
    "FILE_TYPE_REFUSED": "the server does not accept this type of file",
    "UPLOAD_QUOTA_EXCEEDED": "you have uploaded as much as the server allows in 24 hours",
    "BAD_REQUEST": "the server refused it",
}


class UploadsFailed(MultichatError):
    """One or more files of ``send --file`` were refused: nothing was posted (exit status 1)."""


def upload_refusal(path: str, exc: MultichatError) -> str:
    """A line that says which file the server refused, why, and what to do."""
    why = UPLOAD_REFUSALS.get(exc.code)
    if why is None:
        return f"{path}: {exc}"
    later = ""
    if exc.code == "UPLOAD_QUOTA_EXCEEDED" and exc.retry_after is not None:
        later = f"; try again in {wait_text(exc.retry_after)}"
    detail = f": {exc.detail}" if exc.detail else ""
    return f"{path}: {why}{later} ({exc.code}{detail})"


def wait_text(seconds: float) -> str:
    """``45 s``, ``12 min``, ``3.5 h``."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def upload_all(rest: RestClient, paths: list[str], err: TextIO) -> list[FileInfo]:
    """Upload every file, in order; if any is refused, say why for each and raise UploadsFailed.

    Every file is tried, so one run names every refusal. The uploads that
    succeeded are then discarded (``discard_all``).
    """
    uploaded: list[FileInfo] = []
    failures = 0
    for path in paths:
        try:
            uploaded.append(rest.upload(path))
        except (AuthError, ConnectionLost):
            raise
        except MultichatError as exc:
            failures += 1
            print_line(f"multichat: {upload_refusal(path, exc)}", err)
    if failures:
        discard_all(rest, uploaded)
        what = "the file was" if len(paths) == 1 else f"{failures} of {len(paths)} files were"
        raise UploadsFailed("UPLOAD_REFUSED", f"{what} refused; nothing was posted")
    return uploaded


def discard_all(rest: RestClient, uploaded: list[FileInfo]) -> None:
    """Delete uploads no post will take; one that cannot be deleted (the server gone, say)
    stays unposted, and the server removes it later (purge_files)."""
    for info in uploaded:
        with contextlib.suppress(MultichatError):
            rest.discard(info)


def check_readable(paths: list[str]) -> None:
    """Every --file names a readable regular file (else a usage error, before any upload)."""
    for path in paths:
        try:
            with Path(path).open("rb"):
                pass
        except OSError as exc:
            raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
        if not Path(path).is_file():
            raise UsageError(f"{path} is not a file")


def cmd_send(config: Config, args, out: TextIO) -> int:
    """multichat send ROOM [TEXT] [--file PATH]... [--reply-to SEQ]."""
    rest = RestClient(config.url, config.require_token())
    check_readable(args.files)
    room = resolve_room(rest, args.room)
    # No TEXT: standard input, as always; with files, no text at all.
    text = read_text(args.text if args.text is not None else ("" if args.files else "-"))
    files = upload_all(rest, args.files, sys.stderr) if args.files else []
    try:
        stored = rest.post(
            room["id"], text, msg_type=TYPES[args.type], reply_to=args.reply_to, files=files
        )
    except MultichatError as exc:
        discard_all(rest, files)
        raise refused(exc, room, args.reply_to, "reply to") from None
    if args.json:
        print_line(json.dumps(stored), out)
    else:
        reply = f" (a reply to #{args.reply_to})" if args.reply_to is not None else ""
        attached = ""
        if files:
            attached = f" with {len(files)} file{'s' if len(files) > 1 else ''}"
        print_line(f"sent to {room['title']} as #{stored['seq']}{attached}{reply}", out)
    return 0


def cmd_history(config: Config, args, out: TextIO) -> int:
    """multichat history ROOM [-n N] [--before SEQ]: the posts as they are now, oldest first."""
    rest = RestClient(config.url, config.require_token())
    room = resolve_room(rest, args.room)
    page = rest.history(room["id"], before=args.before, limit=args.limit)
    for frame in page["messages"]:
        if args.json:
            print_line(json.dumps(frame), out)
            continue
        print_line(format_message(Message.from_frame(frame)), out)
        for line in file_lines(files_of(frame), config.url):
            print_line(line, out)
    if not page["messages"] and not args.json:
        print_line("(no messages)", out)
    return 0


def cmd_edit(config: Config, args, out: TextIO) -> int:
    """multichat edit ROOM SEQ TEXT."""
    rest = RestClient(config.url, config.require_token())
    room = resolve_room(rest, args.room)
    text = read_text(args.text)
    try:
        answer = rest.edit(room["id"], args.seq, text)
    except MultichatError as exc:
        raise refused(exc, room, args.seq, "edit") from None
    if args.json:
        print_line(json.dumps(answer), out)
    elif answer.get("seq") is None:
        print_line(f"#{args.seq} in {room['title']} already says that; nothing changed", out)
    else:
        print_line(f"edited #{args.seq} in {room['title']}", out)
    return 0


def cmd_delete(config: Config, args, out: TextIO) -> int:
    """multichat delete ROOM SEQ."""
    rest = RestClient(config.url, config.require_token())
    room = resolve_room(rest, args.room)
    try:
        answer = rest.delete(room["id"], args.seq)
    except MultichatError as exc:
        raise refused(exc, room, args.seq, "delete") from None
    if args.json:
        print_line(json.dumps(answer), out)
    else:
        print_line(f"deleted #{args.seq} in {room['title']}", out)
    return 0


def cmd_react(config: Config, args, out: TextIO) -> int:
    """multichat react ROOM SEQ EMOJI [--off]."""
    rest = RestClient(config.url, config.require_token())
    room = resolve_room(rest, args.room)
    on = not args.off
    try:
        answer = rest.react(room["id"], args.seq, args.emoji, on=on)
    except MultichatError as exc:
        raise refused(exc, room, args.seq, "react to") from None
    where = f"#{args.seq} in {room['title']}"
    if args.json:
        print_line(json.dumps(answer), out)
    elif answer.get("seq") is None:
        state = "already has" if on else "does not have"
        print_line(f"{where} {state} your {args.emoji}; nothing changed", out)
    elif on:
        print_line(f"put {args.emoji} on {where}", out)
    else:
        print_line(f"took {args.emoji} off {where}", out)
    return 0


def cmd_dm(config: Config, args, out: TextIO) -> int:
    """multichat dm USER [USER...] [-m TEXT]: the conversation's room id (and the sent seq)."""
    rest = RestClient(config.url, config.require_token())
    room = rest.open_direct(args.users)
    stored = None if args.message is None else rest.post(room["id"], args.message)
    if args.json:
        print_line(json.dumps(room), out)
        if stored is not None:
            print_line(json.dumps(stored), out)
        return 0
    print_line(str(room["id"]), out)
    if stored is not None:
        print_line(f"sent as #{stored['seq']}", out)
    return 0


def cmd_leave(config: Config, args, out: TextIO) -> int:
    """multichat leave ROOM: out of your list on every device, until you join it again."""
    rest = RestClient(config.url, config.require_token())
    room = resolve_room(rest, args.room)
    rest.leave_room(room["id"])
    print_line(f"left {room['title']}; `multichat join {room['id']}` puts it back", out)
    return 0


def cmd_join(config: Config, args, out: TextIO) -> int:
    """multichat join ROOM: a room you left is back in your list."""
    rest = RestClient(config.url, config.require_token())
    room = resolve_room(rest, args.room, left_too=True)
    rest.join_room(room["id"])
    print_line(f"{room['title']} is in your list", out)
    return 0


def cmd_whoami(config: Config, args, out: TextIO) -> int:
    """multichat whoami."""
    me = RestClient(config.url, config.require_token()).me()
    print_line(f"{me['username']}{' (staff)' if me['is_staff'] else ''} at {config.url}", out)
    return 0


async def tail(config: Config, args, out: TextIO, err: TextIO) -> int:
    """Follow a room: print every message and change once, in order, across reconnections."""
    # Here, not at the top: only tail needs the websockets package (the other commands are REST).
    from multichat_client.client import Change, ChatClient, Message, RoomError

    rest = RestClient(config.url, config.require_token())
    room = await asyncio.to_thread(resolve_room, rest, args.room)
    since = args.since if args.since is not None else max(0, room["last_seq"] - args.lines)
    connected_once = False

    def status(text: str) -> None:
        nonlocal connected_once
        if text == "connected" and not connected_once:
            connected_once = True
            return
        print_line(f"multichat: {text}", err)

    async with ChatClient(
        config.url, config.require_token(), max_delay=args.max_delay, on_status=status
    ) as chat:
        info = await chat.join(room["id"], since=since)
        print_line(f"multichat: following {info.title} (room {info.room})", err)
        async for event in chat:
            if isinstance(event, Message):
                if event.seq is None and not args.notices:
                    continue
                if args.json:
                    print_line(json.dumps(event.to_frame()), out)
                    continue
                print_line(format_message(event), out)
                for line in file_lines(event.files, config.url):
                    print_line(line, out)
            elif isinstance(event, Change):
                print_line(json.dumps(event.to_frame()) if args.json else format_change(event), out)
            elif isinstance(event, RoomError):
                print_line(f"multichat: {event.code}: {event.detail}", err)
                if event.room == room["id"]:
                    return 1
    return 0


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None) -> int:
    """Run the command line; returns the exit status."""
    out = out or sys.stdout
    err = sys.stderr
    args = build_parser().parse_args(argv)
    try:
        config = load_config(url=args.url)
        for warning in config.warnings:
            print_line(f"multichat: warning: {warning}", err)
        if args.command == "tail":
            return asyncio.run(tail(config, args, out, err))
        command = {
            "rooms": cmd_rooms,
            "send": cmd_send,
            "history": cmd_history,
            "edit": cmd_edit,
            "delete": cmd_delete,
            "react": cmd_react,
            "mentions": cmd_mentions,
            "search": cmd_search,
            "whoami": cmd_whoami,
            "leave": cmd_leave,
            "join": cmd_join,
            "dm": cmd_dm,
        }[args.command]
        return command(config, args, out)
    except (ConfigError, UsageError) as exc:
        print_line(f"multichat: {exc}", err)
        return 2
    except (AuthError, ConnectionLost, PostRefused, UploadsFailed) as exc:
        print_line(f"multichat: {exc.detail}", err)
        return 1
    except MultichatError as exc:
        print_line(f"multichat: {exc}", err)
        return 1
    except ModuleNotFoundError as exc:  # tail without the websockets package
        print_line(f"multichat: {exc}: install it, or run scripts/multichat (which does)", err)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
