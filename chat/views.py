"""HTTP views: the chat page and the health check."""

import asyncio
import logging

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import JsonResponse
from django.shortcuts import render

from chat import events, redisconn, selectors

log = logging.getLogger(__name__)

HEALTH_TIMEOUT = 3  # seconds each check may take before it counts as failed


@login_required
def home(request):
    """The chat page: the rooms this user may enter, and the client that joins them."""
    rooms = selectors.room_list_for_user(user=request.user)
    config = {
        "user": request.user.get_username(),
        "isStaff": request.user.is_staff,
        "rooms": [{"id": r.pk, "title": r.title, "staffOnly": r.staff_only} for r in rooms],
        "maxMessageLength": settings.CHAT_MESSAGE_MAX_LENGTH,
        "notifyEnterLeave": settings.NOTIFY_USERS_ON_ENTER_OR_LEAVE_ROOMS,
    }
    return render(request, "chat/home.html", {"rooms": rooms, "chat_config": config})


def _database_ok() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        return cursor.fetchone() == (1,)


async def _channel_layer_ok() -> bool:
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
    return (await layer.receive(channel))["type"] == "health.check"


async def healthz(request):
    """200 when the database and the channel layer both answer, else 503 naming what failed."""
    checks = {}
    for name, check in (
        ("database", sync_to_async(_database_ok)),
        ("channel_layer", _channel_layer_ok),
    ):
        try:
            checks[name] = "ok" if await asyncio.wait_for(check(), HEALTH_TIMEOUT) else "failed"
        except Exception as exc:
            log.warning("Health check %s failed: %s", name, exc)
            checks[name] = f"failed: {type(exc).__name__}"
    healthy = all(v == "ok" for v in checks.values())
    return JsonResponse(
        {"status": "ok" if healthy else "unavailable", **checks}, status=200 if healthy else 503
    )
