"""Edits, deletions, reactions and replies in the Python client and the CLI, on a real server.

Changes are entries of the room's seq stream: a client that was cut off
while others changed posts must, on resume, get each change exactly once
and in order, and no post twice; past the server's replay limit the gap
comes from the REST stream (posts as they are now, and every change).
"""

import asyncio
import json
import os
import re
import subprocess
import sys

import pytest

from multichat_client import (
    Change,
    ChatClient,
    Message,
    MultichatError,
    Reaction,
    RestClient,
)
from testkit import ROOT
from testkit.live import LiveServer
from testkit.proxy import TcpProxy

REPLAY_MAX = 6  # the resume test stays under it, the gap test goes past it


@pytest.fixture(scope="module")
def server(database_url):
    """A real server with alice, bob and stella (staff), each with a token; no send limit."""
    live = LiveServer(
        database_url=database_url,
        redis_url=os.environ.get("REDIS_URL"),
        extra_env={"CHAT_SEND_RATE": "0", "CHAT_REPLAY_MAX": str(REPLAY_MAX)},
    ).prepare()
    made = live.seed(users=["alice", "bob"], staff=["stella"], tokens=["alice", "bob", "stella"])
    live.tokens = made.tokens
    live.start()
    yield live
    live.stop()


def rest_as(server: LiveServer, name: str) -> RestClient:
    """The REST client of ``name``, straight to the server."""
    return RestClient(server.url, server.tokens[name])


def cli_env(server: LiveServer, tmp_path, url: str | None = None) -> dict[str, str]:
    """The environment of a CLI run as alice, against ``url`` (default: the server)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MULTICHAT_")}
    env.update(
        HOME=str(tmp_path),
        MULTICHAT_CONFIG=str(tmp_path / "absent.toml"),
        MULTICHAT_URL=url or server.url,
        MULTICHAT_TOKEN=server.tokens["alice"],
        PYTHONUNBUFFERED="1",
    )
    return env


def run_cli(env: dict[str, str], *args: str):
    """Run ``python -m multichat_client ARGS`` to the end."""
    return subprocess.run(
        [sys.executable, "-m", "multichat_client", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


Entry = Message | Change


async def collect(chat: ChatClient, into: list[Entry]) -> None:
    """Append every stream entry (stored post or change) the client yields."""
    async for event in chat:
        if isinstance(event, Change) or (isinstance(event, Message) and event.seq is not None):
            into.append(event)


async def wait_for(predicate, timeout: float = 20) -> None:
    """Wait until ``predicate()`` is true."""
    async with asyncio.timeout(timeout):
        while not predicate():  # noqa: ASYNC110 (lists filled by other tasks; polling is simplest)
            await asyncio.sleep(0.05)


def fold(entries: list[Entry], room: int) -> list[Message]:
    """The room's posts as a client that applies each change sees them, by seq."""
    posts: dict[int, Message] = {}
    for entry in entries:
        if entry.room != room:
            continue
        if isinstance(entry, Message):
            assert entry.seq is not None and entry.seq not in posts, f"post twice: {entry}"
            posts[entry.seq] = entry
        elif entry.target in posts:
            posts[entry.target] = entry.apply(posts[entry.target])
    return [posts[seq] for seq in sorted(posts)]


def history(server: LiveServer, room: int) -> list[Message]:
    """The room's posts as the server stores them now (REST history)."""
    page = rest_as(server, "alice").history(room, limit=100)
    return [Message.from_frame(m) for m in page["messages"]]


def without_clock(line: str) -> str:
    """A tail line with its time of day blanked out."""
    return re.sub(r" \d\d:\d\d:\d\d ", " HH:MM:SS ", line)


async def test_client_edits_deletes_reacts_and_replies_and_members_see_each_change(server):
    """Socket commands: each change takes the next seq, reaches the other member once, and
    folding the changes into the posts gives what history shows; refusals have their codes."""
    room = await asyncio.to_thread(server.create_room, "Changes (client)")
    seen: list[Entry] = []
    async with (
        ChatClient(server.url, server.tokens["alice"]) as alice,
        ChatClient(server.url, server.tokens["bob"]) as bob,
    ):
        await alice.join(room)
        await bob.join(room)
        reader = asyncio.create_task(collect(bob, seen))
        first = await alice.send(room, "helo")
        reply = await bob.send(room, "welcome", reply_to=first)
        assert (first, reply) == (1, 2)
        assert await alice.edit(room, first, "hello") == 3
        assert await alice.edit(room, first, "hello") is None  # the same text: nothing stored
        assert await bob.react(room, first, "👍") == 4
        assert await bob.react(room, first, "👍") is None
        assert await alice.react(room, first, "👍") == 5
        assert await bob.react(room, first, "👍", on=False) == 6
        for denied in (alice.delete(room, reply), alice.edit(room, reply, "mine now")):
            with pytest.raises(MultichatError) as refused:
                await denied
            assert refused.value.code == "EDIT_DENIED"
        assert await bob.delete(room, reply) == 7
        for invalid in (
            bob.edit(room, reply, "back"),  # deleted
            alice.send(room, "to a tombstone", reply_to=reply),
            alice.react(room, 99, "👍"),  # no such post
        ):
            with pytest.raises(MultichatError) as refused:
                await invalid
            assert refused.value.code == "MESSAGE_INVALID"
        # A last post marks the end: the stream is in order, so any duplicate of what came
        # before would have been handed on before it.
        assert await alice.send(room, "the end") == 8
        await wait_for(lambda: len(seen) >= 8)
        reader.cancel()
        info = await alice.join(room)
        assert (info.last_seq, info.posts) == (8, 3)  # changes take seqs, not posts
    assert [e.seq for e in seen] == [1, 2, 3, 4, 5, 6, 7, 8]
    assert [type(e).__name__ for e in seen[:2]] == ["Message", "Message"]
    assert seen[1].reply_to == 1
    changes = [(e.change, e.target, e.username) for e in seen[2:] if isinstance(e, Change)]
    assert changes == [
        ("edit", 1, "alice"),
        ("react", 1, "bob"),
        ("react", 1, "alice"),
        ("react", 1, "bob"),
        ("delete", 2, "bob"),
    ]
    assert seen[5].reactions == (Reaction(emoji="👍", users=("alice",)),)
    assert all(type(e).from_frame(e.to_frame()) == e for e in seen)  # what `tail --json` prints
    stored = await asyncio.to_thread(history, server, room)
    assert fold(seen, room) == stored
    assert (stored[0].message, stored[0].edited is not None) == ("hello", True)
    assert (stored[1].deleted, stored[1].message, stored[1].reply_to) == (True, "", 1)


def test_rest_client_edits_deletes_reacts_and_replies(server):
    """RestClient: post with reply_to, edit, react on/off, delete; an answer without seq
    means nothing changed; refusals raise MultichatError with the server's code and status."""
    room = server.create_room("Changes (REST)")
    alice, bob = rest_as(server, "alice"), rest_as(server, "bob")
    assert alice.post(room, "question")["seq"] == 1
    answer = bob.post(room, "answer", reply_to=1)
    assert (answer["seq"], answer["reply_to"]) == (2, 1)
    assert alice.edit(room, 1, "the question") == {"changed": room, "seq": 3}
    assert alice.edit(room, 1, "the question") == {"changed": room}
    assert bob.react(room, 1, "🎉") == {"changed": room, "seq": 4}
    assert bob.react(room, 1, "🎉", on=False) == {"changed": room, "seq": 5}
    assert bob.react(room, 1, "🎉", on=False) == {"changed": room}
    with pytest.raises(MultichatError) as refused:
        alice.delete(room, 2)
    assert (refused.value.code, refused.value.status) == ("EDIT_DENIED", 403)
    assert bob.delete(room, 2) == {"changed": room, "seq": 6}
    with pytest.raises(MultichatError) as refused:
        bob.delete(room, 2)
    assert (refused.value.code, refused.value.status) == ("MESSAGE_INVALID", 404)
    posts = history(server, room)
    assert [(p.seq, p.message, p.deleted) for p in posts] == [
        (1, "the question", False),
        (2, "", True),
    ]


def test_cli_edits_deletes_reacts_and_replies_with_clear_refusals(server, tmp_path):
    """`multichat send --reply-to`, `edit`, `react [--off]`, `delete`: a line each; a post that
    is not there or not yours is exit status 1 with a sentence naming the post."""
    room = server.create_room("Changes (CLI)")
    env = cli_env(server, tmp_path)
    bob = rest_as(server, "bob")
    bob.post(room, "bob's post")

    def cli(*args: str) -> tuple[int, str, str]:
        done = run_cli(env, *args)
        return done.returncode, done.stdout.strip(), done.stderr.strip()

    title = "Changes (CLI)"
    assert cli("send", title, "mine", "--reply-to", "1") == (
        0,
        f"sent to {title} as #2 (a reply to #1)",
        "",
    )
    assert cli("edit", title, "2", "mine, fixed") == (0, f"edited #2 in {title}", "")
    assert cli("edit", str(room), "2", "mine, fixed") == (
        0,
        f"#2 in {title} already says that; nothing changed",
        "",
    )
    assert cli("react", title, "1", "👍") == (0, f"put 👍 on #1 in {title}", "")
    again = cli("react", title, "1", "👍")
    assert again == (0, f"#1 in {title} already has your 👍; nothing changed", "")
    assert cli("react", title, "1", "👍", "--off") == (0, f"took 👍 off #1 in {title}", "")
    status, out, _ = cli("react", title, "1", "👍", "--off", "--json")
    assert (status, json.loads(out)) == (0, {"changed": room})
    assert cli("delete", title, "2") == (0, f"deleted #2 in {title}", "")

    status, out, err = cli("edit", title, "1", "not mine")
    assert (status, out) == (1, "")
    assert err.startswith(f"multichat: cannot edit #1 in {title}: it is not your post"), err
    assert "EDIT_DENIED" in err
    for args, doing in (
        (("delete", title, "2"), "delete #2"),
        (("react", title, "40", "👍"), "react to #40"),
        (("send", title, "hi", "--reply-to", "2"), "reply to #2"),
    ):
        status, out, err = cli(*args)
        assert (status, out) == (1, ""), args
        expected = f"multichat: cannot {doing} in {title}: there is no such post, or it was deleted"
        assert err.startswith(expected), err
        assert "MESSAGE_INVALID" in err
    posts = history(server, room)
    assert [(p.seq, p.message, p.deleted, p.reply_to) for p in posts] == [
        (1, "bob's post", False, None),
        (2, "", True, 1),
    ]


async def start_tail(env: dict[str, str], room: int) -> tuple[asyncio.subprocess.Process, list]:
    """`multichat tail ROOM --since 0` as a process, and the list its stdout lines go to."""
    tail = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "multichat_client", "tail", str(room), "--since", "0", "--max-delay", "0.5"),
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    lines: list[str] = []

    async def read_lines() -> None:
        assert tail.stdout is not None
        async for line in tail.stdout:
            lines.append(without_clock(line.decode().rstrip("\n")))

    tail.reader = asyncio.create_task(read_lines())  # type: ignore[attr-defined]
    return tail, lines


async def stop_tail(tail: asyncio.subprocess.Process) -> str:
    """Stop the tail process; return what it wrote to stderr."""
    tail.terminate()
    await tail.wait()
    tail.reader.cancel()  # type: ignore[attr-defined]
    assert tail.stderr is not None
    return (await tail.stderr.read()).decode()


async def test_client_and_tail_resume_with_each_change_once_in_order(server, tmp_path):
    """Cut off while bob edits, stella reacts, bob deletes and replies, the client and `tail`
    come back with since: each change once, in seq order, no post twice; tail prints them."""
    room = await asyncio.to_thread(server.create_room, "Resume (changes)")
    bob, stella = rest_as(server, "bob"), rest_as(server, "stella")
    front = TcpProxy("127.0.0.1", server.port).start()  # the test cuts the client's link here
    through = f"http://127.0.0.1:{front.port}/"
    statuses: list[str] = []
    got: list[Entry] = []
    tail, lines = await start_tail(cli_env(server, tmp_path, through), room)
    chat = ChatClient(
        through, server.tokens["alice"], min_delay=0.1, max_delay=0.5, on_status=statuses.append
    )
    try:
        await chat.start()
        await chat.join(room)
        reader = asyncio.create_task(collect(chat, got))
        for text in ("first", "second"):
            await asyncio.to_thread(bob.post, room, text)
        await wait_for(lambda: len(got) == 2 and len(lines) == 2)

        front.cut("refuse")  # both sockets drop now: what follows happens while they are away
        await asyncio.to_thread(bob.edit, room, 1, "first, fixed")  # 3
        await asyncio.to_thread(stella.react, room, 2, "🎉")  # 4
        await asyncio.to_thread(bob.delete, room, 2)  # 5
        await asyncio.to_thread(bob.post, room, "an answer", reply_to=1)  # 6
        front.restore()
        await wait_for(lambda: len(got) == 6 and len(lines) == 6)
        await asyncio.to_thread(bob.post, room, "after")  # 7, live
        # the live post marks the end: a duplicate of anything before it came before it
        await wait_for(lambda: len(got) >= 7 and len(lines) >= 7)
        reader.cancel()
    finally:
        await chat.close()
        stderr = await stop_tail(tail)
        front.stop()
    assert [e.seq for e in got] == [1, 2, 3, 4, 5, 6, 7], got
    assert [(e.change, e.target) for e in got if isinstance(e, Change)] == [
        ("edit", 1),
        ("react", 2),
        ("delete", 2),
    ]
    assert fold(got, room) == await asyncio.to_thread(history, server, room)
    assert any(text.startswith("connection lost") for text in statuses), statuses
    assert lines == [
        "#1 HH:MM:SS bob: first",
        "#2 HH:MM:SS bob: second",
        "#1 edited by bob: first, fixed",
        "#2 reactions changed by stella: 🎉 stella",
        "#2 deleted by bob",
        "#6 HH:MM:SS bob ↳ #1: an answer",
        "#7 HH:MM:SS bob: after",
    ], stderr
    assert "reconnecting" in stderr


async def test_client_resume_past_the_replay_limit_gets_every_post_and_change_once(server):
    """Past CHAT_REPLAY_MAX the gap comes from the REST stream: every post (as it is now) and
    every change once, in order, changes to posts the client already had included; a gap of
    changes only ends."""
    mixed = await asyncio.to_thread(server.create_room, "Gap (posts and changes)")
    edits = await asyncio.to_thread(server.create_room, "Gap (changes only)")
    bob, stella = rest_as(server, "bob"), rest_as(server, "stella")
    head = REPLAY_MAX + 4  # of the changes-only room: its post, the edits, a last post
    front = TcpProxy("127.0.0.1", server.port).start()
    statuses: list[str] = []
    got: list[Entry] = []
    chat = ChatClient(
        f"http://127.0.0.1:{front.port}/",
        server.tokens["alice"],
        min_delay=0.1,
        max_delay=0.5,
        on_status=statuses.append,
    )
    try:
        await chat.start()
        await chat.join(mixed)
        await chat.join(edits)
        reader = asyncio.create_task(collect(chat, got))
        await asyncio.to_thread(bob.post, mixed, "one")  # 1
        await asyncio.to_thread(bob.post, mixed, "two")  # 2
        await asyncio.to_thread(bob.post, edits, "draft 0")  # 1
        await wait_for(lambda: len(got) == 3)

        front.cut("refuse")
        for call, args in (
            (bob.edit, (mixed, 1, "one v2")),  # 3: past the limit: from the REST stream
            (bob.post, (mixed, "three")),  # 4: from the REST stream
            (bob.edit, (mixed, 4, "three v2")),  # 5: replayed from here on
            (bob.post, (mixed, "four")),  # 6
            (bob.react, (mixed, 6, "👍")),  # 7
            (stella.delete, (mixed, 2)),  # 8
            (bob.post, (mixed, "five")),  # 9
            (bob.edit, (mixed, 1, "one v3")),  # 10
        ):
            await asyncio.to_thread(call, *args)
        for n in range(1, REPLAY_MAX + 3):  # seqs 2 .. REPLAY_MAX + 3: edits only
            await asyncio.to_thread(bob.edit, edits, 1, f"draft {n}")
        await asyncio.to_thread(bob.post, edits, "final")  # the head
        front.restore()
        await wait_for(lambda: chat.last_seq(mixed) == 10 and chat.last_seq(edits) == head)
        await asyncio.to_thread(bob.post, mixed, "after")  # 11, live
        # the live post marks the end: a duplicate of anything before it came before it
        await wait_for(lambda: chat.last_seq(mixed) == 11)
        reader.cancel()
    finally:
        await chat.close()
        front.stop()
    in_mixed = [e for e in got if e.room == mixed]
    assert [e.seq for e in in_mixed] == list(range(1, 12))
    assert [e.seq for e in in_mixed if isinstance(e, Message)] == [1, 2, 4, 6, 9, 11]
    edit = next(e for e in in_mixed if e.seq == 3)
    assert (edit.change, edit.target, edit.message) == ("edit", 1, "one v2")
    three = next(e for e in in_mixed if e.seq == 4)
    assert (three.message, three.edited is not None) == ("three v2", True)  # as it is now
    assert fold(got, mixed) == await asyncio.to_thread(history, server, mixed)
    in_edits = [e for e in got if e.room == edits]
    assert [e.seq for e in in_edits] == list(range(1, head + 1))
    assert fold(got, edits) == await asyncio.to_thread(history, server, edits)
    assert not [text for text in statuses if "replay limit" in text], statuses
