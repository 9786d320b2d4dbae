"""Posts stored in groups (chat/posting.py): each outcome is its own, nothing lost or doubled."""

import asyncio

import pytest
from channels.db import database_sync_to_async

from chat import posting
from chat.errors import ChatError
from chat.models import Message, MsgType, Room
from testkit import factories

pytestmark = pytest.mark.django_db(transaction=True)


def post(user, room, text, **fields):
    """message_send's arguments for one post, as the consumer passes them."""
    return {"user": user, "room_id": room.pk, "text": text, "msg_type": MsgType.MESSAGE,
            "reply_to": None, **fields}  # fmt: skip


async def outcomes(*posts):
    """Post all at once through the loop's Poster: the Message or the error of each."""
    poster = posting.poster()
    return await asyncio.gather(*(poster.post(**p) for p in posts), return_exceptions=True)


async def group(*posts):
    """Store the posts as one group (one transaction), as the Poster does: each one's outcome."""
    stored, _ = await database_sync_to_async(posting.store)(list(posts))
    return stored


def stored(room):
    """The room's posts as (seq, text), by seq."""
    return list(Message.objects.filter(room=room).order_by("seq").values_list("seq", "text"))


async def test_posts_sent_together_each_get_their_own_seq_in_every_room(alice, bob):
    """Posts waiting at once, to several rooms, are all stored once with consecutive seqs."""
    rooms = [await database_sync_to_async(factories.create_room)(f"Room {i}") for i in range(3)]
    posts = [post((alice, bob)[i % 2], rooms[i % 3], f"m{i}") for i in range(30)]
    results = await outcomes(*posts)
    assert all(isinstance(r, Message) for r in results), results
    for room in rooms:
        texts = [p["text"] for p in posts if p["room_id"] == room.pk]
        rows = await database_sync_to_async(stored)(room)
        assert [seq for seq, _ in rows] == list(range(1, len(texts) + 1))
        assert sorted(text for _, text in rows) == sorted(texts)
        last_seq = await database_sync_to_async(lambda r=room: Room.objects.get(pk=r.pk).last_seq)()
        assert last_seq == len(texts)
    assert sorted((r.room_id, r.seq) for r in results) == sorted(
        (room.pk, seq) for room in rooms for seq in range(1, 11)
    )


async def test_a_refused_post_is_answered_alone_and_the_others_are_stored(
    alice, staff, room, staff_room
):
    """A rule refusing one post of a group refuses that post only; nothing of it is stored."""
    results = await group(
        post(alice, room, "first"),
        post(alice, staff_room, "let me in"),  # alice may not enter: refused by the seq UPDATE
        post(alice, room, "x" * 100_000),  # too long
        post(alice, room, "announce", msg_type=MsgType.ALERT),  # staff only
        post(staff, staff_room, "inside"),
        post(alice, room, "last"),
    )
    codes = [r.code.value if isinstance(r, ChatError) else "stored" for r in results]
    assert codes == ["stored", "ROOM_ACCESS_DENIED", "MESSAGE_TOO_LONG", "ROOM_ACCESS_DENIED",
                     "stored", "stored"]  # fmt: skip
    assert await database_sync_to_async(stored)(room) == [(1, "first"), (2, "last")]
    assert await database_sync_to_async(stored)(staff_room) == [(1, "inside")]


async def test_a_post_that_fails_the_group_fails_alone(alice, bob, room):
    """A post that breaks its group's transaction is refused; the group's other posts are stored."""
    results = await group(
        post(alice, room, "before"),
        post(bob, room, "broken \ud800 text"),  # a lone surrogate: no database can take it
        post(alice, room, "after"),
    )
    assert isinstance(results[0], Message) and isinstance(results[2], Message), results
    assert not isinstance(results[1], Message | ChatError), results  # a server error
    assert await database_sync_to_async(stored)(room) == [(1, "before"), (2, "after")]


async def test_every_member_gets_every_post_of_a_group_once_and_in_order(connect, make_user):
    """Members of two rooms all posting at once: each member gets each post once, by seq."""
    rooms = [await database_sync_to_async(factories.create_room)(f"Busy {i}") for i in range(2)]
    users = [await database_sync_to_async(make_user)(f"member{i}") for i in range(6)]
    sockets = []
    for i, user in enumerate(users):
        sock = await connect(user)
        await sock.join(rooms[i % 2].pk)
        sockets.append((sock, rooms[i % 2].pk))
    rounds = 4
    for n in range(rounds):
        for i, (sock, room_id) in enumerate(sockets):
            await sock.send({"command": "send", "room": room_id, "message": f"{i}:{n}", "ref": n})
    per_room = rounds * len(sockets) // 2
    for sock, room_id in sockets:
        seqs, replies = [], 0
        while len(seqs) < per_room or replies < rounds:
            frame = await sock.recv(timeout=10)
            if "sent" in frame:
                replies += 1
            else:
                assert frame.get("room") == room_id, frame
                seqs.append(frame["seq"])
        assert seqs == list(range(1, per_room + 1))
        assert await sock.silent(0.2)
