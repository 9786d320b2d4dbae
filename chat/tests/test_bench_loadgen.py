"""The benchmark's accounting: which frames are deliveries, presence lists, the storm's sums."""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest

from bench.loadgen import Member, Tally
from bench.report import headline, table
from bench.run import parse_arguments, sizes
from bench.scenarios import SCENARIOS, converged_at, storm_accounting, wait_for
from chat import protocol
from testkit.sockets import Socket

ROOM = 7


def text(frame: protocol.Frame) -> bytes:
    """A server frame as the server encodes it."""
    return protocol.encode(frame).encode()


def message(seq: int, body: str = "hi") -> bytes:
    """A stored message frame of ROOM."""
    return text(
        protocol.MessageEvent(
            msg_type=0, room=ROOM, username="alice", message=body, seq=seq, ts="2026-01-01T00:00Z"
        )
    )


def presence(full: bool, **members: str) -> bytes:
    """A presence frame of ROOM: username=state for each member."""
    listed = [
        protocol.PresenceMember(username=name, state=state)  # type: ignore[arg-type]
        for name, state in members.items()
    ]
    return text(protocol.PresenceEvent(presence=ROOM, members=listed, full=full))


def test_only_stored_messages_count_as_deliveries_and_other_frames_are_counted_by_kind():
    """Presence, activity, typing, read, mention, change and notice frames are not deliveries."""
    tally = Tally()
    member = Member(tally)
    others = {
        "presence": presence(True, alice="online"),
        "activity": text(
            protocol.ActivityEvent(
                activity=[protocol.RoomActivity(room=ROOM, last_seq=3, posts=3, mentions=1)]
            )
        ),
        "typing": text(protocol.TypingEvent(typing=ROOM, username="bob", expires_in=6)),
        "read": text(protocol.ReadEvent(read=ROOM, seq=2, posts=2)),
        "mention": text(
            protocol.MentionEvent(
                mention=ROOM, seq=2, id=9, username="bob", message="@alice", ts="2026-01-01T00:00Z"
            )
        ),
    }
    others["change"] = text(
        protocol.ChangeEvent(
            change="delete", room=ROOM, seq=3, target=1, username="bob", ts="2026-01-01T00:00Z"
        )
    )
    notice = text(
        protocol.MessageEvent(
            msg_type=4, room=ROOM, username="bob", message="joined the room", ts="2026-01-01T00:00Z"
        )
    )
    member.on_text(message(1), time.time())
    for payload in [*others.values(), notice]:
        member.on_text(payload, time.time())
    member.on_text(message(2), time.time())
    assert member.seqs == {ROOM: [1, 2]}
    assert tally.received == 2
    assert tally.errors == []
    for kind, payload in others.items():
        assert member.notices[kind] == 1, kind
        assert member.notice_bytes[kind] == len(payload), kind
    assert member.notices["other"] == 1  # the enter notice


def test_an_error_frame_outside_a_join_is_counted_as_an_error():
    """An error nobody waits for is an error of the tally, not a delivery."""
    tally = Tally()
    member = Member(tally)
    member.on_text(text(protocol.ErrorFrame(error="RATE_LIMITED", detail="slow down")), 1.0)
    assert tally.errors == ["RATE_LIMITED"]
    assert (tally.received, member.notices["reply"]) == (0, 1)


def test_the_presence_list_follows_the_full_list_and_the_changes():
    """A full frame replaces the list, a change adds, updates or (offline) removes people."""
    member = Member(Tally())
    member.on_text(presence(True, alice="online", bob="idle"), 1.0)
    member.on_text(presence(False, carol="online", bob="online"), 2.0)
    member.on_text(presence(False, alice="offline"), 3.0)
    assert member.presence[ROOM] == {"bob": "online", "carol": "online"}
    assert member.listed(ROOM) == 2
    assert member.presence_log == [(1.0, ROOM, 2), (2.0, ROOM, 3), (3.0, ROOM, 2)]
    member.on_text(presence(True, dave="online"), 4.0)
    assert member.presence[ROOM] == {"dave": "online"}
    assert member.full_lists == 2


def test_converged_at_is_when_the_list_last_reached_everyone():
    """A list that reaches the goal, drops below it and comes back converged the second time."""
    member = Member(Tally())
    member.presence_log = [(1.0, ROOM, 2), (2.0, ROOM, 3), (3.0, ROOM, 2), (4.0, ROOM, 3)]
    member.presence_log.append((5.0, ROOM + 1, 1))  # another room's frame changes nothing
    assert converged_at(member, ROOM, 3) == 4.0
    assert converged_at(member, ROOM, 4) is None


def test_storm_accounting_counts_per_socket_faults_from_its_join_and_the_stragglers():
    """Messages are expected after each socket's join reply; one unconverged socket: no time."""
    early, late, never = Member(Tally()), Member(Tally()), Member(Tally())
    early.base[ROOM], late.base[ROOM], never.base[ROOM] = 0, 3, 4
    early.seqs[ROOM] = [1, 2, 3, 4, 5]
    late.seqs[ROOM] = [5, 4, 4]  # 4 after 5 (reordered), 4 twice
    never.seqs[ROOM] = []  # 5 lost
    for member, sizes_ in ((early, (100, 300)), (late, (200,)), (never, ())):
        member.notices["presence"] = len(sizes_)
        member.notice_bytes["presence"] = sum(sizes_)
    early.presence_log = [(10.5, ROOM, 3)]
    late.presence_log = [(11.0, ROOM, 2), (12.0, ROOM, 3)]
    found = storm_accounting([late, never], [early, late], ROOM, goal=3, start=10.0, posted=5)
    assert (found["converged_s"], found["converged_median_s"]) == (2.0, 1.25)
    assert found["not_converged"] == 0
    assert found["presence_frames_per_socket"] == {"median": 0.5, "max": 1}
    assert (found["lost"], found["duplicated"], found["reordered"]) == (0, 1, 1)
    found = storm_accounting([late, never], [early, never], ROOM, goal=3, start=10.0, posted=5)
    assert (found["converged_s"], found["not_converged"], found["lost"]) == (None, 1, 1)


def test_storm_is_a_scenario_with_full_and_quick_sizes_and_its_own_options():
    """--scenarios storm, in the default run, 500 members (100 quick), --storm-members wins."""
    assert "storm" in SCENARIOS
    assert "storm" in parse_arguments([]).scenarios
    assert sizes(parse_arguments([]))["storm"]["members"] == 500
    assert sizes(parse_arguments(["--quick"]))["storm"]["members"] == 100
    chosen = sizes(parse_arguments(["--quick", "--storm-members", "42", "--storm-rate", "0"]))
    assert chosen["storm"] == {"members": 42, "rate": 0.0}


def test_the_storm_row_and_headline_show_the_nested_per_socket_figures():
    """The table reads ``a.b`` keys from the result's per-socket spreads."""
    result = {
        "members": 500, "joined": 500, "retries": 0, "joined_s": 5.1, "converged_s": 5.8,
        "presence_frames_per_socket": {"median": 4.0, "max": 5},
        "presence_kib_per_socket": {"median": 30.0, "max": 40.0}, "presence_mib": 14.7,
        "server_cpu_s": 3.5, "cpu_ms_per_join": 6.9, "posted": 58, "p99_ms": 187.5,
        "lost": 0, "duplicated": 0, "reordered": 0, "dropped": 0,
    }  # fmt: skip
    lines = table({"storm": {"production": result}}).splitlines()
    assert lines[0] == "== storm"
    assert "presence frames/sock" in lines[1]
    assert lines[2].split() == [
        "production", "500", "500", "0", "5.1", "5.8", "4.0", "5", "30.0", "40.0", "14.7",
        "3.5", "6.9", "58", "187.5", "0", "0", "0", "0",
    ]  # fmt: skip
    assert headline("storm", result) == {
        "all joined s": 5.1, "converged s": 5.8, "server cpu ms/join": 6.9
    }  # fmt: skip


@pytest.fixture
def quick_awareness(settings):
    """Presence and activity frames every 0.2 s (not 1 s), so the test waits less."""
    settings.CHAT_PRESENCE_COALESCE_SECONDS = 0.2
    settings.CHAT_ACTIVITY_SECONDS = 0.2


@pytest.fixture
def carol(make_user):
    return make_user("carol")


@pytest.mark.django_db(transaction=True)
async def test_the_real_servers_frames_are_counted_right(
    quick_awareness, connect, alice, bob, carol, room
):
    """Through the real app: only the messages are deliveries; mention, read, typing, presence
    and activity frames are counted by kind, and every presence list reaches all three."""
    users = [alice, bob, carol]
    sockets: list[Socket] = [await connect(user) for user in users]
    tally = Tally()
    members = [Member(tally) for _ in users]

    async def pump(sock: Socket, member: Member) -> None:
        while True:
            member.on_text((await sock.comm.receive_from(timeout=30)).encode(), time.time())

    pumps = [asyncio.create_task(pump(s, m)) for s, m in zip(sockets, members, strict=True)]
    try:
        for sock in sockets:
            await sock.send({"command": "join", "room": room.pk})
        to_alice, to_bob, to_carol = members
        assert await wait_for(lambda: all(m.notices["reply"] == 1 for m in members), limit=5)
        await sockets[0].send({"command": "send", "room": room.pk, "message": "hello"})
        await sockets[0].send({"command": "send", "room": room.pk, "message": "hi @bob"})
        await sockets[1].send({"command": "typing", "room": room.pk})
        await sockets[0].send({"command": "read", "room": room.pk, "seq": 2})
        assert await wait_for(
            lambda: (
                all(
                    m.listed(room.pk) == 3
                    and len(m.seqs.get(room.pk, [])) == 2
                    and m.notices["activity"]
                    for m in members
                )
                and to_bob.notices["mention"] == 1
                and to_alice.notices["read"] >= 1  # the read command's; posting may add more
                and to_alice.notices["typing"] == to_carol.notices["typing"] == 1
            ),
            limit=5,
        )
    finally:
        for task in pumps:
            task.cancel()
        for task in pumps:
            with contextlib.suppress(asyncio.CancelledError):
                await task
    assert [m.seqs for m in members] == [{room.pk: [1, 2]}] * 3
    assert tally.received == 6
    assert tally.errors == []
    assert [m.full_lists for m in members] == [1, 1, 1]
    assert all(m.notices["presence"] >= 1 for m in members)
