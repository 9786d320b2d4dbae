"""Random frames on the socket: every one gets exactly one answer, never SERVER_ERROR, never a leak.

Deterministic by default: conftest.py registers the hypothesis profiles ("ci",
derandomized, the default; "explore", random with more examples, chosen with
HYPOTHESIS_PROFILE=explore).
"""

import json

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from chat.models import Message

pytestmark = pytest.mark.django_db(transaction=True)

MAX_FRAME = 65536  # CHAT_MAX_FRAME_BYTES' default: the frames stay within it
WAIT = 20  # seconds: generous, the machine may be busy; replies normally take milliseconds


class Raw(str):
    """JSON text spliced into a frame as is (numbers json.dumps cannot write, deep nesting)."""


def dump(value) -> str:
    """Serialise ``value`` as JSON, splicing Raw fragments in unchanged."""
    if isinstance(value, Raw):
        return str(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)}: {dump(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(dump(v) for v in value) + "]"
    return json.dumps(value)  # NaN and Infinity come out as JS literals: invalid JSON, on purpose


huge_numbers = st.sampled_from(
    [
        Raw("9" * 5000),
        Raw("-" + "9" * 5000),
        Raw("1" + "0" * 4400),
        Raw("1e999"),
        Raw("-0"),
        Raw("1.5e-400"),
        Raw(str(2**63)),
        Raw(str(2**64)),
    ]
)
numeric_strings = st.sampled_from(
    ["9" * 5000, "0" * 5000 + "1", " 7 ", "+1", "1_000", "١٢", "0x10", "1e3", "", " ", "-1"]
) | st.integers(-(2**70), 2**70).map(str)
deep = st.sampled_from(
    [
        Raw("[" * 10000 + "]" * 10000),
        Raw('{"":' * 10000 + "1" + "}" * 10000),
        Raw("[" * 200 + "]" * 200),
    ]
)
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(-(2**70), 2**70)
    | st.floats()
    | st.text(max_size=30)
    | numeric_strings
    | huge_numbers
)
json_values = (
    st.recursive(
        scalars,
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
        ),
        max_leaves=8,
    )
    | deep
)

FIELDS = ["command", "room", "message", "msg_type", "since", "before", "limit", "ref", "extra"]
FIELDS_OF = {
    "join": ["room", "since"],
    "leave": ["room"],
    "send": ["room", "message", "msg_type"],
    "history": ["room", "before", "limit"],
}


def command_frames(room_ids: list[int]):
    """A command (known or not) with each field right, wrong, missing, or one it does not take."""
    good = {
        "room": st.sampled_from(room_ids + [str(r) for r in room_ids]),
        "message": st.text(min_size=1, max_size=40),
        "msg_type": st.sampled_from([0, 1]),
        "since": st.integers(0, 5),
        "before": st.integers(0, 5),
        "limit": st.integers(1, 5),
        "ref": st.integers(0, 10**6) | st.text(max_size=10) | st.none() | st.booleans(),
        "extra": json_values,
    }

    def frame(command):
        known = FIELDS_OF.get(command, [])
        names = st.lists(st.sampled_from(FIELDS[1:]), unique=True, max_size=4)
        return st.tuples(
            st.just(command), st.sets(st.sampled_from(known)) if known else st.just(set()), names
        ).flatmap(
            lambda t: st.fixed_dictionaries(
                {"command": st.just(t[0])}
                | {n: good[n] | json_values for n in sorted(set(t[2]) - t[1])}
                | {n: good[n] for n in sorted(t[1])}
            )
        )

    commands = (
        st.sampled_from(["join", "leave", "send", "history"])
        | st.sampled_from(["dance", "", "JOIN"])
        | st.text(max_size=10)
    )
    mangled_command = st.fixed_dictionaries({"command": json_values, "room": json_values})
    return st.one_of(commands.flatmap(frame), mangled_command).map(dump)


def any_frames(room_ids: list[int]):
    """Text that is a command-like object, any JSON, or not JSON at all; or a binary frame."""
    text = st.one_of(
        command_frames(room_ids),
        json_values.map(dump),
        st.text(min_size=1, max_size=40),
    ).filter(lambda frame: len(frame.encode()) <= MAX_FRAME)  # larger ones close the socket
    return text | st.binary(min_size=1, max_size=20)


REPLY_KEYS = {"error", "join", "leave", "history", "sent"}


@hsettings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
async def test_random_frames_each_get_one_answer_and_never_leak(
    data, settings, connect, alice, bob, room, staff_room
):
    """Each frame gets one reply (an accepted send without ref: none); no SERVER_ERROR; no leak."""
    settings.CHAT_SEND_RATE = 0  # every valid send is stored, not rate-limited
    assert settings.CHAT_MAX_FRAME_BYTES >= MAX_FRAME
    sender = await connect(alice)
    watcher = await connect(bob)
    try:
        await sender.join(room.pk)
        await watcher.join(room.pk)
        frames = data.draw(
            st.lists(any_frames([room.pk, staff_room.pk, 0]), min_size=1, max_size=6)
        )
        stored_before = await Message.objects.acount()
        accepted = 0
        for i, frame in enumerate(frames):
            if isinstance(frame, bytes):
                await sender.comm.send_to(bytes_data=frame)
            else:
                await sender.comm.send_to(text_data=frame)
            probe = f"probe-{i}"
            await sender.send({"command": "join", "room": 0, "ref": probe})
            replies = []
            while True:
                answer = await sender.raw(WAIT)
                if answer.get("ref") == probe and answer.get("error") == "ROOM_INVALID":
                    break
                if REPLY_KEYS & answer.keys():
                    replies.append(answer)
            assert len(replies) <= 1, (frame[:200], replies)
            assert all(r.get("error") != "SERVER_ERROR" for r in replies), (frame[:200], replies)
            if not replies or "sent" in replies[0]:
                accepted += 1  # a send; without a ref its only answer is the broadcast
        stored = await Message.objects.acount() - stored_before
        assert stored == accepted
        assert not await Message.objects.filter(room=staff_room).aexists()
        seen = 0
        while seen < stored:
            if (await watcher.raw(WAIT)).get("msg_type") in (0, 1, 2, 3):
                seen += 1
        assert await watcher.silent(0.1)
    finally:
        await sender.close()
        await watcher.close()
