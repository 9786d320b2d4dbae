"""A range of a room's stream read moments ago is read again from memory (events.stream_recent)."""

from __future__ import annotations

import json

import pytest
from channels.db import database_sync_to_async

from chat import events, services

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def reads(monkeypatch) -> list[tuple[int, int, int]]:
    """Each (room, after, upto) that reached the database (ranges kept a minute: no timing)."""
    monkeypatch.setattr(events, "RECENT_SECONDS", 60.0)
    seen: list[tuple[int, int, int]] = []
    real = events.stream_after

    def counted(*, room_id: int, after: int, upto: int) -> list[str]:
        seen.append((room_id, after, upto))
        return real(room_id=room_id, after=after, upto=upto)

    monkeypatch.setattr(events, "stream_after", counted)
    return seen


def post(room_id: int, user, count: int) -> None:
    for i in range(1, count + 1):
        services.room_post(room_id=room_id, user=user, text=f"m{i}")


async def test_joins_with_the_same_since_read_the_replay_once(room, bob, reads):
    """A room's sockets coming back after a restart: one read for all of them."""
    await database_sync_to_async(post)(room.pk, bob, 3)
    join = database_sync_to_async(services.room_join)
    first = await join(user=bob, room_id=room.pk, since=1)
    again = await join(user=bob, room_id=room.pk, since=1)
    other = await join(user=bob, room_id=room.pk, since=0)
    assert [json.loads(t)["seq"] for t in first.replay] == [2, 3]
    assert again.replay == first.replay
    assert [json.loads(t)["seq"] for t in other.replay] == [1, 2, 3]
    assert reads == [(room.pk, 1, 3), (room.pk, 0, 3)]


async def test_a_newer_post_makes_a_range_of_its_own(room, bob, reads):
    """The range ends at the room's last seq as read by each join: never a stale end."""
    join = database_sync_to_async(services.room_join)
    await database_sync_to_async(post)(room.pk, bob, 2)
    before = await join(user=bob, room_id=room.pk, since=0)
    await database_sync_to_async(services.room_post)(room_id=room.pk, user=bob, text="new")
    after = await join(user=bob, room_id=room.pk, since=0)
    assert (before.last_seq, after.last_seq) == (2, 3)
    assert [json.loads(t)["message"] for t in after.replay] == ["m1", "m2", "new"]
    assert reads == [(room.pk, 0, 2), (room.pk, 0, 3)]


async def test_an_edit_after_the_read_reaches_the_joiner_as_its_own_event(room, bob, reads):
    """The kept replay shows the post as it was; the edit has a later seq and comes live."""
    join = database_sync_to_async(services.room_join)
    await database_sync_to_async(post)(room.pk, bob, 2)
    await join(user=bob, room_id=room.pk, since=0)
    edit_seq = await database_sync_to_async(services.message_edit)(
        user=bob, room_id=room.pk, seq=1, text="m1, edited"
    )
    assert edit_seq == 3  # above the kept range's end: the joiner gets it live or in a fill
    later = await join(user=bob, room_id=room.pk, since=0)
    assert later.last_seq == 3 and len(reads) == 2  # a new range: (0, 3)
    assert [json.loads(t).get("seq") for t in later.replay][:2] == [1, 2]


def test_kept_ranges_expire_and_are_bounded(room, bob, reads, monkeypatch):
    post(room.pk, bob, 3)
    events.stream_recent(room_id=room.pk, after=0, upto=2)
    events.stream_recent(room_id=room.pk, after=0, upto=2)
    assert len(reads) == 1
    monkeypatch.setattr(events, "RECENT_SECONDS", -1.0)  # everything kept from now is stale
    events.forget_recent()
    events.stream_recent(room_id=room.pk, after=0, upto=2)
    events.stream_recent(room_id=room.pk, after=1, upto=2)
    assert len(reads) == 3
    assert events._recent == {}  # expired ranges are dropped, not left to take memory

    monkeypatch.setattr(events, "RECENT_SECONDS", 60.0)
    monkeypatch.setattr(events, "RECENT_MAX_FRAMES", 4)
    events.stream_recent(room_id=room.pk, after=0, upto=2)  # 2 frames
    events.stream_recent(room_id=room.pk, after=1, upto=3)  # 2 more: 4 in all
    events.stream_recent(room_id=room.pk, after=0, upto=2)
    assert len(reads) == 5 and events._recent_frames == 4
    events.stream_recent(room_id=room.pk, after=2, upto=3)  # past the bound: the oldest goes
    assert list(events._recent) == [(room.pk, 1, 3), (room.pk, 2, 3)]
    assert events._recent_frames == 3
    events.stream_recent(room_id=room.pk, after=0, upto=2)
    assert len(reads) == 7
