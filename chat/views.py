"""HTTP views: the chat page and the health check."""

import asyncio
import logging
from collections.abc import Awaitable, Callable

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from chat import events, redisconn, selectors
from chat.permissions import AuthenticatedRequest

log = logging.getLogger(__name__)

HEALTH_TIMEOUT = 2.5  # seconds the checks may take before they count as failed (< 3)


@login_required
def home(request: AuthenticatedRequest) -> HttpResponse:
    """The chat page: the rooms this user may enter (with unread counts), and the client."""
    user = request.user
    rooms = selectors.room_list_with_unread(user=user)
    config = {
        "user": user.get_username(),
        "isStaff": user.is_staff,
        "rooms": [
            {
                "id": r.room.pk,
                "title": r.room.title,
                "staffOnly": r.room.staff_only,
                "lastSeq": r.room.last_seq,
                "readSeq": r.read_seq,
                "mentions": r.mentions,
            }
            for r in rooms
        ],
        "maxMessageLength": settings.CHAT_MESSAGE_MAX_LENGTH,
        "notifyEnterLeave": settings.NOTIFY_USERS_ON_ENTER_OR_LEAVE_ROOMS,
        "heartbeatSeconds": settings.CHAT_HEARTBEAT_SECONDS,
        "heartbeatTimeoutSeconds": settings.CHAT_HEARTBEAT_TIMEOUT_SECONDS,
    }
    return render(request, "chat/home.html", {"rooms": rooms, "chat_config": config})


def _database_ok() -> bool:
    """True if the database answers ``SELECT 1`` (run in a worker thread)."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            row: tuple[int] | None = cursor.fetchone()
            return row == (1,)
    finally:
        connection.close()  # a worker thread: hand the pooled connection back at once


_database_check: asyncio.Future[bool] | None = None  # the one check in flight in this process


async def _database_check_once() -> bool:
    """Run the database check in a worker thread, at most one at a time per process.

    Not on the shared sync thread (thread_sensitive), where it would queue
    behind other database work; and while one check is stuck on a database
    that does not answer, later health checks wait on that same one instead
    of starting another thread each.
    """
    global _database_check
    loop = asyncio.get_running_loop()
    if _database_check is None or _database_check.done() or _database_check.get_loop() is not loop:
        _database_check = asyncio.ensure_future(
            sync_to_async(_database_ok, thread_sensitive=False)()
        )
        # Its result may come after every waiter gave up: read it, so nothing logs it as lost.
        _database_check.add_done_callback(lambda f: f.cancelled() or f.exception())
    return await asyncio.shield(_database_check)


async def _channel_layer_ok() -> bool:
    """True if the layer works: an event comes back (Redis: is published, the hub is live)."""
    layer = get_channel_layer()
    if redisconn.redis_configured():
        # Publish through this process's own layer connection, as a post does
        # (a fresh client could answer while that connection is still broken),
        # and require the hub's subscriber to be back too, so 200 means live
        # delivery works both ways.
        await layer.group_send(events.PING_GROUP, {"type": "layer.ping"})
        found = vars(layer).get("_chat_hub")
        return not (
            found is not None and found.loop is asyncio.get_running_loop() and found.failing
        )
    channel = await layer.new_channel()
    await layer.send(channel, {"type": "health.check"})
    received: str = (await layer.receive(channel))["type"]
    return received == "health.check"


async def healthz(request: HttpRequest) -> JsonResponse:
    """200 when the database and the channel layer both answer, else 503 naming what failed."""

    async def run(name: str, check: Callable[[], Awaitable[bool]]) -> str:
        try:
            return "ok" if await asyncio.wait_for(check(), HEALTH_TIMEOUT) else "failed"
        except Exception as exc:
            log.warning("Health check %s failed: %s", name, exc)
            return f"failed: {type(exc).__name__}"

    # Side by side, so the answer comes within HEALTH_TIMEOUT whatever is down.
    database, channel_layer = await asyncio.gather(
        run("database", _database_check_once), run("channel_layer", _channel_layer_ok)
    )
    checks = {"database": database, "channel_layer": channel_layer}
    healthy = all(v == "ok" for v in checks.values())
    return JsonResponse(
        {"status": "ok" if healthy else "unavailable", **checks}, status=200 if healthy else 503
    )
