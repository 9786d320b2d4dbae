"""Edits, deletions, reactions and replies: rules, live delivery, and resume with ``since``.

A change takes the room's next seq (it is numbered in the stream like a post,
but is not a post), so a socket that resumes or fills a gap gets every change
it missed exactly once and in order; unread counts only posts.
"""

import asyncio
import json
import uuid
from datetime import timedelta

import pytest
from channels.db import database_sync_to_async

from chat import selectors, services
from chat.errors import ChatError, ErrorCode
from chat.models import Change, ChangeKind, Mention, Message, Reaction, Room
from testkit.live import LiveServer, join, next_frame, open_ws

pytestmark = pytest.mark.django_db(transaction=True)


def post(user, room, text, **kwargs) -> Message:
    return services.message_send(user=user, room_id=room.pk, text=text, **kwargs)


def is_change(frame) -> bool:
    return "change" in frame


class _Refused:
    """A block that must raise ChatError with ``code``."""

    def __init__(self, code: ErrorCode) -> None:
        self.code = code

    def __enter__(self):
        return self

    def __exit__(self, kind, error, tb):
        assert isinstance(error, ChatError), f"expected {self.code}, got {error!r}"
        assert error.code == self.code, error.detail
        return True


def test_a_change_takes_the_next_seq_but_is_not_a_post(alice, bob, room):
    """Posts and changes share one gap-free seq; posts (and unread) count posts only."""
    post(alice, room, "hello")  # seq 1
    assert services.message_edit(user=alice, room_id=room.pk, seq=1, text="hello!") == 2
    assert services.message_react(user=bob, room_id=room.pk, seq=1, emoji="👍", on=True) == 3
    post(alice, room, "second")  # seq 4
    room.refresh_from_db()
    assert (room.last_seq, room.posts) == (4, 2)
    assert list(Message.objects.filter(room=room).values_list("seq", "num")) == [(1, 1), (4, 2)]
    assert list(Change.objects.filter(room=room).values_list("seq", "kind", "target")) == [
        (2, ChangeKind.EDIT, 1),
        (3, ChangeKind.REACT, 1),
    ]
    # bob reads up to the reaction's seq: one post (hello) read, one (second) unread
    assert services.read_mark(user=bob, room_id=room.pk, seq=3) == (3, 1)
    [entry] = selectors.room_list_with_unread(user=bob)
    assert (entry.unread, entry.read_posts) == (1, 1)
    # a reaction after everything was read is not unread
    services.read_mark(user=bob, room_id=room.pk, seq=4)
    services.message_react(user=alice, room_id=room.pk, seq=4, emoji="🎉", on=True)
    [entry] = selectors.room_list_with_unread(user=bob)
    assert entry.unread == 0


def test_only_the_author_edits_and_staff_delete_any_post(alice, bob, staff, room):
    post(alice, room, "mine")
    with _Refused(ErrorCode.EDIT_DENIED):
        services.message_edit(user=bob, room_id=room.pk, seq=1, text="not yours")
    with _Refused(ErrorCode.EDIT_DENIED):
        services.message_delete(user=bob, room_id=room.pk, seq=1)
    with _Refused(ErrorCode.EDIT_DENIED):  # staff may delete, not edit, others' posts
        services.message_edit(user=staff, room_id=room.pk, seq=1, text="staff")
    with _Refused(ErrorCode.MESSAGE_INVALID):
        services.message_edit(user=alice, room_id=room.pk, seq=9, text="none")
    room.refresh_from_db()
    assert room.last_seq == 1  # refusals take no seq
    assert services.message_delete(user=staff, room_id=room.pk, seq=1) == 2
    with _Refused(ErrorCode.MESSAGE_INVALID):  # a tombstone cannot be changed
        services.message_edit(user=alice, room_id=room.pk, seq=1, text="back")
    with _Refused(ErrorCode.MESSAGE_INVALID):
        services.message_react(user=bob, room_id=room.pk, seq=1, emoji="👍", on=True)


def test_the_edit_window_limits_authors_but_not_staff_deletions(alice, staff, room, settings):
    post(alice, room, "quick")
    sent = Message.objects.get(room=room, seq=1).created
    Message.objects.filter(room=room, seq=1).update(created=sent - timedelta(seconds=120))
    settings.CHAT_EDIT_WINDOW_SECONDS = 60
    with _Refused(ErrorCode.EDIT_DENIED):
        services.message_edit(user=alice, room_id=room.pk, seq=1, text="late")
    with _Refused(ErrorCode.EDIT_DENIED):
        services.message_delete(user=alice, room_id=room.pk, seq=1)
    assert services.message_delete(user=staff, room_id=room.pk, seq=1) == 2
    settings.CHAT_EDIT_WINDOW_SECONDS = 0  # no limit
    post(alice, room, "again")
    Message.objects.filter(room=room, seq=3).update(created="2000-01-01T00:00:00Z")
    assert services.message_edit(user=alice, room_id=room.pk, seq=3, text="fine") == 4


def test_nothing_changed_stores_nothing(alice, bob, room):
    post(alice, room, "same")
    assert services.message_edit(user=alice, room_id=room.pk, seq=1, text="same") is None
    assert services.message_react(user=bob, room_id=room.pk, seq=1, emoji="👍", on=False) is None
    assert services.message_react(user=bob, room_id=room.pk, seq=1, emoji="👍", on=True) == 2
    assert services.message_react(user=bob, room_id=room.pk, seq=1, emoji="👍", on=True) is None
    assert services.message_react(user=bob, room_id=room.pk, seq=1, emoji="👍", on=False) == 3
    room.refresh_from_db()
    assert room.last_seq == 3


@pytest.mark.parametrize("emoji", ["", "a b", "👍\n", "x" * 17, "\u202eevil", "\x07"])
def test_a_reaction_is_an_emoji_or_a_short_word(alice, room, emoji):
    post(alice, room, "react to me")
    with _Refused(ErrorCode.BAD_REQUEST):
        services.message_react(user=alice, room_id=room.pk, seq=1, emoji=emoji, on=True)


def test_reactions_group_by_emoji_in_order_and_are_capped(alice, bob, staff, room, settings):
    post(alice, room, "vote")
    for user, emoji in ((bob, "👍"), (alice, "🎉"), (alice, "👍"), (staff, "+1")):
        services.message_react(user=user, room_id=room.pk, seq=1, emoji=emoji, on=True)
    [frame], _ = services.room_history(user=alice, room_id=room.pk)
    assert [(r.emoji, r.users) for r in frame.reactions] == [
        ("👍", ["bob", "alice"]),
        ("🎉", ["alice"]),
        ("+1", [staff.get_username()]),
    ]
    settings.CHAT_REACTIONS_MAX_PER_POST = 3
    with _Refused(ErrorCode.BAD_REQUEST):
        services.message_react(user=bob, room_id=room.pk, seq=1, emoji="🚀", on=True)
    # an emoji already there may still be added by someone else
    assert services.message_react(user=bob, room_id=room.pk, seq=1, emoji="🎉", on=True)


def test_a_deletion_leaves_no_text_behind(alice, bob, room):
    """The post, its mentions and reactions, and the frames of its earlier edits lose the text."""
    post(alice, room, "draft @bob")
    services.message_edit(user=alice, room_id=room.pk, seq=1, text="secret @bob")
    services.message_react(user=bob, room_id=room.pk, seq=1, emoji="👀", on=True)
    assert Mention.objects.filter(message__room=room).exists()
    services.message_delete(user=alice, room_id=room.pk, seq=1)
    assert not Mention.objects.filter(message__room=room).exists()
    assert not Reaction.objects.exists()
    frames = list(Change.objects.filter(room=room).values_list("frame", flat=True))
    assert not [f for f in frames if "secret" in f or "draft" in f], frames
    assert [json.loads(f)["change"] for f in frames] == ["delete", "react", "delete"]
    message = Message.objects.get(room=room, seq=1)
    assert (message.text, message.html, message.deleted) == ("", "", True)


def test_a_reply_names_a_live_post_of_the_same_room(alice, bob, room, make_user):
    post(alice, room, "question")
    other = Room.objects.create(title="Other")
    post(alice, other, "elsewhere")
    reply = post(bob, room, "answer", reply_to=1)
    assert reply.reply_to == 1
    [_, frame], _ = services.room_history(user=alice, room_id=room.pk)
    assert (frame.reply_to, frame.message) == (1, "answer")
    with _Refused(ErrorCode.MESSAGE_INVALID):
        post(bob, room, "to nothing", reply_to=99)
    services.message_delete(user=alice, room_id=room.pk, seq=1)
    with _Refused(ErrorCode.MESSAGE_INVALID):
        post(bob, room, "to a tombstone", reply_to=1)


async def test_members_see_changes_live_and_commands_answer_with_the_change_seq(
    connect, alice, bob, room
):
    a = await connect(alice)
    b = await connect(bob)
    for sock in (a, b):
        await sock.send({"command": "join", "room": room.pk})
        await sock.recv_until(lambda f: "presence" in f)
    await a.send({"command": "send", "room": room.pk, "message": "hi *there*"})
    first = await b.recv_until(lambda f: f.get("seq") == 1)
    assert first.get("html", "") in ("", "<p>hi <em>there</em></p>")
    await b.send({"command": "send", "room": room.pk, "message": "yo", "reply_to": 1, "ref": 1})
    assert await b.recv_until(lambda f: f.get("ref") == 1) == {"sent": room.pk, "seq": 2, "ref": 1}
    reply = await a.recv_until(lambda f: f.get("seq") == 2)
    assert reply["reply_to"] == 1
    await a.send({"command": "edit", "room": room.pk, "seq": 1, "message": "hi all", "ref": "e"})
    assert await a.recv_until(lambda f: f.get("ref") == "e") == {
        "changed": room.pk,
        "seq": 3,
        "ref": "e",
    }
    edit = await b.recv_until(is_change)
    assert {k: edit[k] for k in ("change", "room", "seq", "target", "username", "message")} == {
        "change": "edit",
        "room": room.pk,
        "seq": 3,
        "target": 1,
        "username": "alice",
        "message": "hi all",
    }
    assert "edited" in edit
    await b.send({"command": "react", "room": room.pk, "seq": 1, "emoji": "👍", "ref": "r"})
    react = await a.recv_until(lambda f: f.get("change") == "react")
    assert (react["seq"], react["reactions"]) == (4, [{"emoji": "👍", "users": ["bob"]}])
    await b.send({"command": "edit", "room": room.pk, "seq": 1, "message": "mine", "ref": "x"})
    error = await b.recv_until(lambda f: f.get("ref") == "x")
    assert error["error"] == "EDIT_DENIED"
    await b.send({"command": "delete", "room": room.pk, "seq": 77, "ref": "d"})
    assert (await b.recv_until(lambda f: f.get("ref") == "d"))["error"] == "MESSAGE_INVALID"
    await b.send({"command": "react", "room": room.pk, "seq": 1, "emoji": "a b", "ref": "w"})
    assert (await b.recv_until(lambda f: f.get("ref") == "w"))["error"] == "BAD_REQUEST"
    # a command for a room the user may not enter says so, and changes nothing
    await b.send({"command": "delete", "room": room.pk + 999, "seq": 1, "ref": "n"})
    assert (await b.recv_until(lambda f: f.get("ref") == "n"))["error"] == "ROOM_INVALID"


async def test_resume_with_since_replays_posts_and_changes_once_in_order(connect, alice, bob, room):
    """A socket that was away gets, after `since`, the posts as they are now and every change."""
    await database_sync_to_async(post)(alice, room, "one")  # 1
    await database_sync_to_async(post)(alice, room, "two")  # 2
    away = await connect(bob)
    await away.send({"command": "join", "room": room.pk})
    reply = await away.recv_until(lambda f: "join" in f)
    since = reply["last_seq"]
    await away.close()

    def meanwhile():
        services.message_edit(user=alice, room_id=room.pk, seq=1, text="one!")  # 3
        services.message_react(user=alice, room_id=room.pk, seq=2, emoji="🎉", on=True)  # 4
        post(alice, room, "three")  # 5
        services.message_edit(user=alice, room_id=room.pk, seq=5, text="three!")  # 6
        services.message_delete(user=alice, room_id=room.pk, seq=2)  # 7

    await database_sync_to_async(meanwhile)()
    back = await connect(bob)
    await back.send({"command": "join", "room": room.pk, "since": since})
    reply = await back.recv_until(lambda f: "join" in f)
    assert (reply["last_seq"], reply["replayed"], reply["posts"]) == (7, 5, 3)
    frames = [await back.recv() for _ in range(5)]
    assert [f["seq"] for f in frames] == [3, 4, 5, 6, 7]
    assert [f.get("change") for f in frames] == ["edit", "react", None, "edit", "delete"]
    assert frames[2]["message"] == "three!" and "edited" in frames[2]  # the post as it is now
    # a post stored now arrives live after the replay with the next seq, and nothing
    # numbered comes in between (no replayed event twice)
    await database_sync_to_async(post)(alice, room, "four")
    numbered = []
    while not numbered or numbered[-1] != 8:
        frame = await back.recv(timeout=10)
        if "seq" in frame:
            numbered.append(frame["seq"])
    assert numbered == [8]


def test_gap_fill_sends_the_stream_merged_by_seq(alice, bob, room):
    """What a socket that missed events gets from the database: events.stream_after."""
    from chat import events

    post(alice, room, "a")  # 1
    services.message_react(user=bob, room_id=room.pk, seq=1, emoji="👍", on=True)  # 2
    post(bob, room, "b")  # 3
    services.message_edit(user=bob, room_id=room.pk, seq=3, text="b2")  # 4
    stream = [json.loads(t) for t in events.stream_after(room_id=room.pk, after=0, upto=4)]
    assert [(f["seq"], f.get("change")) for f in stream] == [
        (1, None),
        (2, "react"),
        (3, None),
        (4, "edit"),
    ]
    assert stream[0]["reactions"] == [{"emoji": "👍", "users": ["bob"]}]
    assert stream[2]["message"] == "b2"
    assert [
        json.loads(t)["seq"] for t in events.stream_after(room_id=room.pk, after=2, upto=3)
    ] == [3]


# --- two real server processes on one Redis and one PostgreSQL --------------------------


@pytest.fixture
def pair(pg_url, redis_server):
    prefix = f"mcchanges-{uuid.uuid4().hex[:8]}"
    env = {"CHANNEL_LAYER_PREFIX": prefix, "CHAT_SEND_RATE": "0"}
    servers = [
        LiveServer(database_url=pg_url, redis_url=redis_server.url, extra_env=env) for _ in range(2)
    ]
    servers[0].prepare()
    room = servers[0].seed(users=["alice", "bob"], rooms=["General"]).rooms["General"]
    for server in servers:
        server.room_id = room
        server.start()
    yield servers
    for server in servers:
        server.stop()


@pytest.mark.redis
@pytest.mark.postgres
async def test_changes_cross_processes_and_a_resume_on_the_other_process_gets_them(pair):
    one, two = pair
    room = one.room_id
    alice = await open_ws(one, "alice")
    bob = await open_ws(two, "bob")
    await join(alice, room)
    await join(bob, room)
    await alice.send(json.dumps({"command": "send", "room": room, "message": "hello"}))
    await next_frame(bob, lambda f: f.get("seq") == 1)
    await bob.send(json.dumps({"command": "react", "room": room, "seq": 1, "emoji": "👋"}))
    react = await next_frame(alice, is_change)
    assert (react["seq"], react["reactions"]) == (2, [{"emoji": "👋", "users": ["bob"]}])
    await bob.close()
    # while bob is away: an edit, a post, a reaction, a deletion, all on process one
    commands = [
        {"command": "edit", "room": room, "seq": 1, "message": "hello, bob"},
        {"command": "send", "room": room, "message": "are you there?"},
        {"command": "react", "room": room, "seq": 1, "emoji": "👋", "on": True},
        {"command": "delete", "room": room, "seq": 4},
    ]
    for command in commands:
        await alice.send(json.dumps(command))
    await next_frame(alice, lambda f: f.get("seq") == 6)
    # bob resumes on process one this time, from the seq he had
    bob = await open_ws(one, "bob")
    reply = await join(bob, room, since=2)
    assert (reply["last_seq"], reply["replayed"], reply["posts"]) == (6, 4, 2)
    frames = [json.loads(await bob.recv()) for _ in range(4)]
    assert [(f["seq"], f.get("change")) for f in frames] == [
        (3, "edit"),
        (4, None),
        (5, "react"),
        (6, "delete"),
    ]
    assert frames[1]["deleted"] is True and frames[1]["message"] == ""
    assert frames[2]["reactions"] == [{"emoji": "👋", "users": ["bob", "alice"]}]
    # and both sockets keep one stream: a new post is 7 for both
    await asyncio.gather(alice.send(json.dumps({"command": "send", "room": room, "message": "!"})))
    for ws in (alice, bob):
        assert (await next_frame(ws, lambda f: "seq" in f and "change" not in f))["seq"] == 7
    await alice.close()
    await bob.close()


def test_only_members_change_posts_of_a_direct_conversation(alice, bob, staff, make_user):
    """A non-member (staff too) may not react, edit or delete there; staff moderate in the admin."""
    from chat import rooms

    carol = make_user("carol")
    dm, _ = rooms.direct_open(user=alice, usernames=["bob"])
    post(alice, dm, "between us")
    assert services.message_react(user=bob, room_id=dm.pk, seq=1, emoji="🤝", on=True) == 2
    for outsider in (carol, staff):
        with _Refused(ErrorCode.ROOM_ACCESS_DENIED):
            services.message_react(user=outsider, room_id=dm.pk, seq=1, emoji="👀", on=True)
        with _Refused(ErrorCode.ROOM_ACCESS_DENIED):
            services.message_delete(user=outsider, room_id=dm.pk, seq=1)
    assert services.message_delete(user=staff, room_id=dm.pk, seq=1, moderator=True) == 3
    with _Refused(ErrorCode.EDIT_DENIED):  # moderating is for staff only
        services.message_delete(user=carol, room_id=dm.pk, seq=1, moderator=True)


def test_the_rest_stream_pages_posts_as_they_are_and_every_change(alice, bob, staff_room, room):
    """GET /api/rooms/{id}/stream: what a resume from `after` replays, a page at a time."""
    from django.test import Client

    from api import services as token_services

    post(alice, room, "one")  # 1
    services.message_react(user=bob, room_id=room.pk, seq=1, emoji="👍", on=True)  # 2
    post(bob, room, "two")  # 3
    services.message_edit(user=alice, room_id=room.pk, seq=1, text="one!")  # 4
    _, token = token_services.token_create(user=bob, name="t")
    client = Client(headers={"Authorization": f"Bearer {token}"})
    page = client.get(f"/api/rooms/{room.pk}/stream?after=0&limit=3").json()
    assert (page["after"], page["upto"], page["has_more"]) == (0, 3, True)
    assert [(p["seq"], p["message"]) for p in page["posts"]] == [(1, "one!"), (3, "two")]
    assert [(c["seq"], c["change"]) for c in page["changes"]] == [(2, "react")]
    page = client.get(f"/api/rooms/{room.pk}/stream?after=3").json()
    assert (page["upto"], page["has_more"], page["posts"]) == (4, False, [])
    assert [(c["seq"], c["change"], c["message"]) for c in page["changes"]] == [(4, "edit", "one!")]
    refused = client.get(f"/api/rooms/{staff_room.pk}/stream?after=0")
    assert (refused.status_code, refused.json()["error"]) == (403, "ROOM_ACCESS_DENIED")


async def test_an_edit_mentions_who_it_adds_and_unmentions_who_it_drops(
    connect, alice, bob, staff, room
):
    """A name added by an edit notifies its user; a name taken out no longer counts."""
    sock = await connect(bob)
    message = await database_sync_to_async(post)(alice, room, "hello @stella")
    await database_sync_to_async(services.message_edit)(
        user=alice, room_id=room.pk, seq=message.seq, text="hello @stella and @bob"
    )
    frame = await sock.recv_until(lambda f: "mention" in f)
    assert (frame["mention"], frame["seq"], frame["message"]) == (
        room.pk,
        message.seq,
        "hello @stella and @bob",
    )

    def mentioned():
        return sorted(
            Mention.objects.filter(message=message).values_list("user__username", flat=True)
        )

    assert await database_sync_to_async(mentioned)() == ["bob", "stella"]
    await database_sync_to_async(services.message_edit)(
        user=alice, room_id=room.pk, seq=message.seq, text="hello @bob"
    )
    assert await database_sync_to_async(mentioned)() == ["bob"]
    counts = await database_sync_to_async(selectors.unread_mentions)(user_ids=[staff.pk, bob.pk])
    assert (counts[staff.pk][room.pk], counts[bob.pk][room.pk]) == (0, 1)
