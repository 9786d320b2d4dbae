"""The Python client and the ``multichat`` CLI against a real server process, restarts included."""

import asyncio
import json
import os
import subprocess
import sys

import pytest

from multichat_client import (
    Activity,
    AuthError,
    ChatClient,
    Mention,
    Message,
    ReadMark,
    RestClient,
    RoomActivity,
)
from testkit import ROOT
from testkit.live import LiveServer

REPLAY_MAX = 4  # small, so a long outage also exercises the client's gap filling


@pytest.fixture(scope="module")
def server(database_url):
    """One real server with alice, a staff user, a room and a staff room; no send rate limit."""
    live = LiveServer(
        database_url=database_url,
        redis_url=os.environ.get("REDIS_URL"),
        extra_env={"CHAT_SEND_RATE": "0", "CHAT_REPLAY_MAX": str(REPLAY_MAX)},
    ).prepare()
    made = live.seed(
        users=["alice"],
        staff=["stella"],
        rooms=["General"],
        staff_rooms=["Staff lounge"],
        tokens=["alice"],
    )
    live.room_id = made.rooms["General"]
    live.staff_room_id = made.rooms["Staff lounge"]
    live.token = made.tokens["alice"]
    live.start()
    yield live
    live.stop()


def cli_env(server: LiveServer, tmp_path, **extra: str) -> dict[str, str]:
    """The environment of a CLI run: this server and alice's token, no stray config file."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MULTICHAT_")}
    env.update(
        HOME=str(tmp_path),
        MULTICHAT_CONFIG=str(tmp_path / "absent.toml"),
        MULTICHAT_URL=server.url,
        MULTICHAT_TOKEN=server.token,
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def run_cli(env: dict[str, str], *args: str, stdin: str | None = None):
    """Run ``python -m multichat_client ARGS`` to the end."""
    return subprocess.run(
        [sys.executable, "-m", "multichat_client", *args],
        cwd=ROOT,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def new_room(server: LiveServer, title: str) -> int:
    """A fresh room, so each test counts seqs from 1."""
    return server.create_room(title)


def post_while_down(server: LiveServer, room: int, texts: list[str]) -> None:
    """Store messages straight into the database (as another server process would)."""
    server.testkit("send", room_id=room, texts=texts, username="alice")


def test_cli_rooms_lists_the_rooms_the_token_may_enter(server, tmp_path):
    """`multichat rooms` lists General but not the staff room (alice is not staff)."""
    done = run_cli(cli_env(server, tmp_path), "rooms", "--json")
    assert done.returncode == 0, done.stderr
    rooms = [json.loads(line) for line in done.stdout.splitlines()]
    titles = {room["title"] for room in rooms}
    assert "General" in titles
    assert "Staff lounge" not in titles


def test_cli_send_posts_by_title_or_id_and_prints_the_seq(server, tmp_path):
    """`multichat send ROOM TEXT` posts through the API; ROOM may be a title or an id."""
    room = new_room(server, "Send here")
    env = cli_env(server, tmp_path)
    done = run_cli(env, "send", "Send here", "hello from the CLI")
    assert (done.returncode, done.stdout.strip()) == (0, "sent to Send here as #1"), done.stderr
    done = run_cli(env, "send", str(room), "--json", stdin="from stdin\n")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["seq"] == 2
    page = RestClient(server.url, server.token).history(room)
    assert [m["message"] for m in page["messages"]] == ["hello from the CLI", "from stdin"]


def test_cli_send_follows_the_servers_rules(server, tmp_path):
    """A warning from a non-staff user is refused, with the server's code, exit status 1."""
    done = run_cli(cli_env(server, tmp_path), "send", "General", "careful", "--type", "warning")
    assert done.returncode == 1
    assert "ROOM_ACCESS_DENIED" in done.stderr
    done = run_cli(cli_env(server, tmp_path), "send", "Staff lounge", "hi")
    assert done.returncode == 2
    assert "no room 'Staff lounge'" in done.stderr


def test_cli_creates_renames_leaves_and_joins_rooms(server, tmp_path):
    """`rooms create`, `rooms rename`, `leave` and `join`: the REST room services, by title."""
    env = cli_env(server, tmp_path)
    done = run_cli(env, "rooms", "create", "CLI corner", "--json")
    assert done.returncode == 0, done.stderr
    made = json.loads(done.stdout)
    assert (made["title"], made["created_by"]) == ("CLI corner", "alice")
    done = run_cli(env, "rooms", "rename", "cli corner", "Terminal talk")
    assert done.returncode == 0, done.stderr
    assert "Terminal talk" in done.stdout
    done = run_cli(env, "leave", "Terminal talk")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("left Terminal talk")
    listed = run_cli(env, "rooms", "--json").stdout
    assert "Terminal talk" not in listed
    everything = run_cli(env, "rooms", "--all").stdout
    assert f"{made['id']:>5}  Terminal talk  [0]  (left)" in everything.splitlines()
    done = run_cli(env, "join", "Terminal talk")
    assert (done.returncode, done.stdout.strip()) == (0, "Terminal talk is in your list")
    titles = [room["title"] for room in RestClient(server.url, server.token).rooms()]
    assert "Terminal talk" in titles
    refused = run_cli(env, "rooms", "create", "Secret", "--staff-only")
    assert (refused.returncode, "ROOM_ACCESS_DENIED" in refused.stderr) == (1, True)


def test_cli_dm_opens_one_conversation_and_sends_to_it(server, tmp_path):
    """`multichat dm stella -m TEXT` prints the room id and sends; again: the same room."""
    env = cli_env(server, tmp_path)
    done = run_cli(env, "dm", "stella", "-m", "psst")
    assert done.returncode == 0, done.stderr
    room_id, sent = done.stdout.splitlines()
    assert sent == "sent as #1"
    again = run_cli(env, "dm", "stella", "alice")  # naming yourself changes nothing
    assert (again.returncode, again.stdout.strip()) == (0, room_id)
    listed = run_cli(env, "rooms").stdout
    assert f"{int(room_id):>5}  alice, stella  [1]  (direct: alice, stella)" in listed.splitlines()
    history = RestClient(server.url, server.token).history(int(room_id))
    assert [m["message"] for m in history["messages"]] == ["psst"]
    refused = run_cli(env, "dm", "nobody-here")
    assert refused.returncode == 1 and "USER_INVALID" in refused.stderr
    assert "'nobody-here'" in refused.stderr


def test_cli_with_a_bad_token_says_where_to_get_one(server, tmp_path):
    """A refused token gives the sentence that names the fix."""
    env = cli_env(server, tmp_path, MULTICHAT_TOKEN="mct_00000000_wrong")
    for args in (["rooms"], ["tail", "General"]):
        done = run_cli(env, *args)
        assert done.returncode == 1
        expected = (
            "the server refused the token (USER_HAS_TO_LOGIN): "
            f"create one at {server.url.rstrip('/')}/tokens/"
        )
        assert expected in done.stderr


def test_cli_reads_the_url_and_token_from_the_config_file(server, tmp_path):
    """Without environment variables, url and token come from MULTICHAT_CONFIG's file."""
    config = tmp_path / "config.toml"
    config.write_text(f'url = "{server.url}"\ntoken = "{server.token}"\n')
    config.chmod(0o600)
    env = cli_env(server, tmp_path, MULTICHAT_CONFIG=str(config))
    del env["MULTICHAT_URL"], env["MULTICHAT_TOKEN"]
    done = run_cli(env, "whoami")
    assert (done.returncode, done.stdout.strip()) == (0, f"alice at {server.url.rstrip('/')}")
    assert done.stderr == ""


def test_cli_without_a_token_explains_how_to_give_one(server, tmp_path):
    """No token anywhere: exit status 2 and where to put one."""
    env = cli_env(server, tmp_path)
    del env["MULTICHAT_TOKEN"]
    done = run_cli(env, "rooms")
    assert done.returncode == 2
    assert "set MULTICHAT_TOKEN" in done.stderr and "/tokens/" in done.stderr


async def test_client_joins_sends_and_receives(server):
    """ChatClient: join, send (returns the seq), and the message comes back as an event."""
    room = await asyncio.to_thread(new_room, server, "Client")
    async with ChatClient(server.url, server.token) as chat:
        info = await chat.join(room)
        assert (info.title, info.last_seq) == ("Client", 0)
        assert await chat.send(room, "hello") == 1
        events = aiter(chat)
        notice = await asyncio.wait_for(anext(events), 5)
        assert (notice.msg_type, notice.seq) == (4, None)  # alice's own "joined the room"
        event = await asyncio.wait_for(anext(events), 5)
        assert isinstance(event, Message)
        assert (event.seq, event.username, event.message) == (1, "alice", "hello")


async def test_client_with_a_revoked_token_raises_auth_error(server):
    """A revoked token is refused on the socket: the client raises AuthError, not retries."""
    token = await asyncio.to_thread(server.create_token, "alice", "soon revoked")
    await asyncio.to_thread(server.testkit, "revoke-token", name="soon revoked")
    chat = ChatClient(server.url, token)
    with pytest.raises(AuthError) as refused:
        await chat.start()
        await asyncio.wait_for(chat.join(server.room_id), 5)
    assert "/tokens/" in refused.value.detail
    await chat.close()


async def collect(chat: ChatClient, into: list[Message]) -> None:
    """Append every stored message the client yields."""
    async for event in chat:
        if isinstance(event, Message) and event.seq is not None:
            into.append(event)


async def wait_for(predicate, timeout: float = 20) -> None:
    """Wait until ``predicate()`` is true."""
    async with asyncio.timeout(timeout):
        while not predicate():  # noqa: ASYNC110 (lists filled by other tasks; polling is simplest)
            await asyncio.sleep(0.05)


async def test_client_resumes_across_a_restart_filling_a_long_gap(server):
    """Messages stored while the server was down come back once each, even past the replay cap."""
    room = await asyncio.to_thread(new_room, server, "Restart (client)")
    got: list[Message] = []
    async with ChatClient(server.url, server.token, min_delay=0.2, max_delay=1) as chat:
        await chat.join(room)
        reader = asyncio.create_task(collect(chat, got))
        for i in range(2):
            await chat.send(room, f"before {i}")
        await wait_for(lambda: len(got) == 2)

        await asyncio.to_thread(server.stop)
        missed = [f"while down {i}" for i in range(REPLAY_MAX + 3)]  # more than one replay
        await asyncio.to_thread(post_while_down, server, room, missed)
        await asyncio.to_thread(server.start)
        rest = RestClient(server.url, server.token)
        await asyncio.to_thread(rest.post, room, "after")

        total = 2 + len(missed) + 1
        await wait_for(lambda: len(got) >= total)
        await asyncio.sleep(0.5)  # a duplicate would arrive now
        reader.cancel()
    assert [m.seq for m in got] == list(range(1, total + 1))
    assert [m.message for m in got[2:-1]] == missed


async def test_cli_tail_survives_a_server_restart_without_gap_or_duplicate(server, tmp_path):
    """`multichat tail` follows live, rides out a restart, and prints every seq exactly once."""
    room = await asyncio.to_thread(new_room, server, "Restart (tail)")
    rest = RestClient(server.url, server.token)
    await asyncio.to_thread(rest.post, room, "old 1")
    env = cli_env(server, tmp_path)
    tail = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "multichat_client",
        "tail",
        str(room),
        "--since",
        "0",
        "--json",
        "--max-delay",
        "1",
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    lines: list[dict] = []

    async def read_lines() -> None:
        async for line in tail.stdout:
            lines.append(json.loads(line))

    reader = asyncio.create_task(read_lines())
    try:
        await wait_for(lambda: len(lines) == 1)
        for i in range(2):
            await asyncio.to_thread(rest.post, room, f"live {i}")
        await wait_for(lambda: len(lines) == 3)

        await asyncio.to_thread(server.stop)
        await asyncio.to_thread(post_while_down, server, room, ["down 0", "down 1"])
        await asyncio.to_thread(server.start)
        for i in range(2):
            await asyncio.to_thread(rest.post, room, f"back {i}")
        await wait_for(lambda: len(lines) >= 7)
        await asyncio.sleep(0.5)  # a duplicate would arrive now
    finally:
        tail.terminate()
        await tail.wait()
        reader.cancel()
    stderr = (await tail.stderr.read()).decode()
    assert [line["seq"] for line in lines] == [1, 2, 3, 4, 5, 6, 7], stderr
    assert [line["message"] for line in lines] == [
        "old 1",
        "live 0",
        "live 1",
        "down 0",
        "down 1",
        "back 0",
        "back 1",
    ]
    assert "reconnecting" in stderr


async def next_of(events, kind: type, timeout: float = 5):
    """The next event of ``kind`` from the client's iterator."""
    async with asyncio.timeout(timeout):
        while True:
            event = await anext(events)
            if isinstance(event, kind):
                return event


async def test_client_surfaces_mentions_activity_and_read_positions(server, tmp_path):
    """Staff mentions alice in a room she has not joined: Mention, then Activity; read() clears
    it everywhere (ReadMark); `multichat rooms` and `multichat mentions` show the counts."""
    room = await asyncio.to_thread(new_room, server, "Mentions (client)")
    stella = RestClient(server.url, await asyncio.to_thread(server.create_token, "stella"))
    async with ChatClient(server.url, server.token, awareness=True) as chat:
        events = aiter(chat)
        await asyncio.to_thread(stella.post, room, "hello")
        await asyncio.to_thread(stella.post, room, "@alice please look")
        mention = await next_of(events, Mention)
        assert (mention.room, mention.seq, mention.username) == (room, 2, "stella")
        activity = await next_of(events, Activity)
        assert activity.rooms[-1] == RoomActivity(room=room, last_seq=2, mentions=1, posts=2)

        done = run_cli(cli_env(server, tmp_path), "rooms")
        assert "Mentions (client)  [2]  (2 unread, 1 mention)" in done.stdout, done.stderr
        done = run_cli(cli_env(server, tmp_path), "mentions")
        assert done.stdout.splitlines()[0].startswith("Mentions (client) #2 ")
        assert done.stdout.splitlines()[0].endswith(" stella: @alice please look")
        listed, has_more = await asyncio.to_thread(chat.mentions, limit=1)
        assert (listed, has_more) == ([mention], False)

        assert await chat.read(room, 5) == 2  # clamped to the room's last seq
        assert await next_of(events, ReadMark) == ReadMark(room=room, seq=2, posts=2)
        cleared = await next_of(events, Activity)
        assert cleared.rooms == (RoomActivity(room=room, last_seq=2, mentions=0, posts=2),)
        info = await chat.join(room)
        assert (info.last_seq, info.read_seq, info.posts, info.read_posts) == (2, 2, 2, 2)
    [listed_room] = [r for r in await asyncio.to_thread(stella.rooms) if r["id"] == room]
    assert (listed_room["unread"], listed_room["mentions"]) == (0, 0)  # stella posted both
