"""A socket's post publishes its events from the event loop (events.announce), not its thread."""

from __future__ import annotations

import asyncio
import contextvars
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from chat import consumers, dbguard, events
from chat.activity import Tracker
from chat.errors import ChatError, ErrorCode


def committed(outbox_events: list[tuple[str, dict[str, Any], bool]]) -> events.Collected:
    """What a database thread hands back after a commit published these (group, event, required)."""
    with events.collecting() as outbox:
        for group, event, required in outbox_events:
            events._group_send(group, event, required=required)
    return events.Collected("stored", None, outbox)


def room_event(room_id: int, seq: int) -> dict[str, Any]:
    return {"type": events.EVENT_TYPE, "room": room_id, "seq": seq, "text": f"post {seq}"}


async def subscribed(group: str) -> str:
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(group, channel)
    return channel


@pytest.fixture
def sent(monkeypatch) -> list[tuple[str, dict[str, Any]]]:
    """Every (group, event) given to the layer's group_send from now on (still sent)."""
    layer = get_channel_layer()
    calls: list[tuple[str, dict[str, Any]]] = []
    real = layer.group_send

    async def recorded(group: str, event: dict[str, Any]) -> None:
        calls.append((group, dict(event)))
        await real(group, event)

    monkeypatch.setattr(layer, "group_send", recorded)
    return calls


async def test_a_commit_inside_collecting_sends_nothing_until_announced(sent):
    channel = await subscribed(events.room_group(901))
    done = committed([(events.room_group(901), room_event(901, 1), True)])
    assert sent == []
    assert await consumers.announced(asyncio.sleep(0, done)) == "stored"
    assert [group for group, _ in sent] == ["chat.room.901"]
    async with asyncio.timeout(5):
        received = await get_channel_layer().receive(channel)
    assert (received["room"], received["seq"], received["group"]) == (901, 1, "chat.room.901")


async def test_a_post_is_announced_even_if_its_socket_task_is_cancelled_meanwhile():
    """The client left while its post was being stored: the post's event still goes out."""
    channel = await subscribed(events.room_group(902))
    thread_done = asyncio.Event()

    async def stored() -> events.Collected:
        await thread_done.wait()
        return committed([(events.room_group(902), room_event(902, 5), True)])

    socket_task = asyncio.create_task(consumers.announced(stored()))
    await asyncio.sleep(0.05)
    socket_task.cancel()
    thread_done.set()
    with pytest.raises(asyncio.CancelledError):
        await socket_task
    async with asyncio.timeout(5):
        received = await get_channel_layer().receive(channel)
    assert received["seq"] == 5


async def test_events_committed_before_an_error_still_go_out_and_then_it_is_raised():
    channel = await subscribed(events.room_group(903))
    done = committed([(events.room_group(903), room_event(903, 2), True)])
    done.error = ChatError(ErrorCode.BAD_REQUEST, "after the commit")
    with pytest.raises(ChatError, match="after the commit"):
        await consumers.announced(asyncio.sleep(0, done))
    async with asyncio.timeout(5):
        assert (await get_channel_layer().receive(channel))["seq"] == 2


async def test_a_stored_post_whose_event_cannot_be_sent_says_its_stored_seq(monkeypatch):
    layer = get_channel_layer()

    async def refused(group: str, event: dict[str, Any]) -> None:
        raise ConnectionError("the layer is down")

    monkeypatch.setattr(layer, "group_send", refused)
    monkeypatch.setattr(events, "_retry_in_background", lambda: None)
    monkeypatch.setattr(events, "_state", events._LayerState())
    done = committed(
        [
            (events.room_group(904), room_event(904, 7), True),
            (
                events.ACTIVITY_GROUP,
                {"type": events.ROOM_ACTIVITY_TYPE, "activity_room": 904},
                False,
            ),
        ]
    )
    with pytest.raises(ChatError) as refused_post:
        await consumers.announced(asyncio.sleep(0, done))
    assert refused_post.value.code == ErrorCode.SERVICE_UNAVAILABLE
    assert refused_post.value.stored_seq == 7
    assert events._state.unsynced == {904: 7}  # re-synced once the layer answers


async def test_posts_activity_events_go_out_together(monkeypatch, sent):
    """Three posts in two rooms within the batch window: one activity event naming both."""
    monkeypatch.setattr(events, "ACTIVITY_BATCH_SECONDS", 1.0)
    channel = await subscribed(events.ACTIVITY_GROUP)
    for room_id, seq in ((911, 1), (912, 1), (911, 2)):
        activity = {"type": events.ROOM_ACTIVITY_TYPE, "activity_room": room_id, "last_seq": seq}
        await consumers.announced(
            asyncio.sleep(0, committed([(events.ACTIVITY_GROUP, activity, False)]))
        )
    assert sent == []  # waiting for the batch
    async with asyncio.timeout(5):
        received = await get_channel_layer().receive(channel)
    assert received["activity_rooms"] == [911, 912]
    assert [event.get("activity_rooms") for _, event in sent] == [[911, 912]]

    tracker = Tracker(fanout=None)  # type: ignore[arg-type]
    tracker.push(received)
    assert tracker.changed == {911, 912}


async def test_one_activity_batch_is_out_at_a_time_and_a_failed_one_goes_with_the_next(
    monkeypatch,
):
    """A shard that is down holds each publish ~0.3 s: batches must not pile up behind it.

    While one batch's publish waits, posts only add rooms to the next; a batch
    that failed gives its rooms to the next, which goes once the layer answers.
    """
    monkeypatch.setattr(events, "ACTIVITY_BATCH_SECONDS", 0.01)
    monkeypatch.setattr(events, "ACTIVITY_RETRY_SECONDS", 0.01)
    monkeypatch.setattr(events, "_retry_in_background", lambda: None)
    monkeypatch.setattr(events, "_state", events._LayerState())
    layer = get_channel_layer()
    release = asyncio.Event()
    first_out = asyncio.Event()
    out = 0
    most_out = 0
    failures = 0
    delivered: list[list[int]] = []

    async def slow_then_down(group: str, event: dict[str, Any]) -> None:
        nonlocal out, most_out, failures
        out += 1
        most_out = max(most_out, out)
        first_out.set()
        try:
            await release.wait()
            if failures < 2:
                failures += 1
                raise ConnectionError("the shard is down")
            delivered.append(event["activity_rooms"])
        finally:
            out -= 1

    monkeypatch.setattr(layer, "group_send", slow_then_down)

    async def post(room_id: int) -> None:
        activity = {"type": events.ROOM_ACTIVITY_TYPE, "activity_room": room_id, "last_seq": 1}
        await consumers.announced(
            asyncio.sleep(0, committed([(events.ACTIVITY_GROUP, activity, False)]))
        )

    await post(921)
    async with asyncio.timeout(5):
        await first_out.wait()  # the first batch is out, waiting on the layer
    for room_id in (922, 923, 922):
        await post(room_id)
        await asyncio.sleep(0.03)  # three batch windows: each would have sent a batch
    assert most_out == 1
    release.set()
    sending = events._activity_batch(layer).sending
    assert sending is not None
    async with asyncio.timeout(5):
        await sending  # sends until no room is left
    assert most_out == 1 and failures == 2
    assert delivered == [[921, 922, 923]]  # the failed batches' rooms, with the later ones


async def test_a_mention_for_the_whole_room_is_not_held_back(monkeypatch):
    """Only plain activity waits for the batch; ``@room`` notifies at once."""
    monkeypatch.setattr(events, "ACTIVITY_BATCH_SECONDS", 30)
    channel = await subscribed(events.ACTIVITY_GROUP)
    mention = {
        "type": events.ROOM_ACTIVITY_TYPE,
        "activity_room": 913,
        "last_seq": 3,
        "mention_text": "{}",
    }
    await consumers.announced(
        asyncio.sleep(0, committed([(events.ACTIVITY_GROUP, mention, False)]))
    )
    async with asyncio.timeout(5):
        assert (await get_channel_layer().receive(channel))["activity_room"] == 913


async def test_the_first_publish_after_an_outage_resyncs_the_rooms_that_missed_events(monkeypatch):
    """A post stored while the layer was down is announced by a room.sync once it answers."""
    layer = get_channel_layer()
    channel = await subscribed(events.room_group(905))
    real = layer.group_send
    down = True

    async def flaky(group: str, event: dict[str, Any]) -> None:
        if down:
            raise ConnectionError("the layer is down")
        await real(group, event)

    monkeypatch.setattr(layer, "group_send", flaky)
    monkeypatch.setattr(events, "_retry_in_background", lambda: None)
    monkeypatch.setattr(events, "_state", events._LayerState())
    during = committed([(events.room_group(905), room_event(905, 3), True)])
    with pytest.raises(ChatError):
        await consumers.announced(asyncio.sleep(0, during))
    down = False
    after = committed([(events.room_group(906), room_event(906, 1), True)])
    await consumers.announced(asyncio.sleep(0, after))
    async with asyncio.timeout(5):
        sync = await layer.receive(channel)
    assert (sync["type"], sync["room"], sync["seq"]) == (events.ROOM_SYNC_TYPE, 905, 3)
    assert events._state.unsynced == {} and events._state.failing == set()


async def test_a_database_call_runs_in_the_callers_context_and_publishes_on_its_loop():
    """dbguard.in_pool: the caller's context vars are seen; async_to_sync in it uses this loop."""
    caller = contextvars.ContextVar("caller")
    caller.set("socket 7")
    loop = asyncio.get_running_loop()

    async def which_loop() -> asyncio.AbstractEventLoop:
        return asyncio.get_running_loop()

    def on_thread() -> tuple[str, asyncio.AbstractEventLoop]:
        return caller.get(), async_to_sync(which_loop)()

    assert await dbguard.in_pool(on_thread)() == ("socket 7", loop)
