"""HTTP views: the chat page, attached files, health check, metrics, favicon, logged-out notice."""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required, login_required
from django.contrib.auth.models import AnonymousUser
from django.db import connection
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    HttpResponseForbidden,
    HttpResponseRedirect,
    JsonResponse,
)
from django.shortcuts import render, resolve_url
from django.templatetags.static import static
from django.urls import reverse
from django.utils.cache import patch_cache_control
from django.utils.translation import gettext as _
from django.views.decorators.http import require_safe

from api import tokens
from api.auth import authenticate_token
from chat import conf, events, files, images, permissions, redisconn, selectors, shards
from chat import metrics as chat_metrics
from chat.permissions import Account, AuthenticatedRequest
from people import selectors as people_selectors

log = logging.getLogger(__name__)

FAVICON_MAX_AGE = 24 * 60 * 60  # seconds browsers may keep the /favicon.ico redirect

HEALTH_TIMEOUT = 2.5  # seconds the checks may take before they count as failed (< 3)
SHARD_TIMEOUT = 2.0  # seconds a layer shard's ping may take (< HEALTH_TIMEOUT: named)


def chat_config(user: Account) -> dict[str, Any]:
    """What the browser client starts from (the page's chat-config JSON): the user's rooms
    (with unread counts, and which they left), their card, the limits and where the server is."""
    rooms = selectors.room_list_with_unread(user=user, include_left=True)
    card = people_selectors.card_of(user)
    return {
        "user": user.get_username(),
        # The user's own card, so their name and avatar show before any lookup (people.js).
        "profile": {
            "username": card.username,
            "display_name": card.display_name,
            "color": card.color,
            "initials": card.initials,
        },
        "isStaff": permissions.is_manager(user),
        "rooms": [
            {
                "id": r.room.pk,
                "title": r.room.title,
                "staffOnly": r.room.staff_only,
                "kind": r.room.kind,
                "members": r.members,
                "createdBy": r.created_by,
                "left": r.left,
                "lastSeq": r.room.last_seq,
                "readSeq": r.read_seq,
                "posts": r.room.posts,
                "readPosts": r.read_posts,
                "mentions": r.mentions,
            }
            for r in rooms
        ],
        "maxMessageLength": conf.CHAT_MESSAGE_MAX_LENGTH,
        # Attachments: checked in the page too, so a file too large is refused before it is sent.
        "uploadMaxBytes": conf.CHAT_UPLOAD_MAX_BYTES,
        "uploadMaxFiles": conf.CHAT_UPLOAD_MAX_FILES,
        "notifyEnterLeave": conf.NOTIFY_USERS_ON_ENTER_OR_LEAVE_ROOMS,
        "canCreateRooms": permissions.is_manager(user) or bool(conf.CHAT_USERS_CREATE_ROOMS),
        "roomTitleMaxLength": conf.CHAT_ROOM_TITLE_MAX_LENGTH,
        "directMaxMembers": conf.CHAT_DIRECT_MAX_MEMBERS,
        "heartbeatSeconds": conf.CHAT_HEARTBEAT_SECONDS,
        "heartbeatTimeoutSeconds": conf.CHAT_HEARTBEAT_TIMEOUT_SECONDS,
        # Edit and delete your own posts for this long (0: no limit); staff delete any post.
        "editWindowSeconds": conf.CHAT_EDIT_WINDOW_SECONDS,
        "reactionsMax": conf.CHAT_REACTIONS_MAX_PER_POST,
        # Where the page finds the server: wherever the project mounted the chat (chat/urls.py).
        "socketPath": conf.socket_path(),
        "apiBase": reverse("api:openapi-json").removesuffix("openapi.json"),
        "loginUrl": resolve_url(settings.LOGIN_URL),
    }


@login_required
def home(request: AuthenticatedRequest) -> HttpResponse:
    """The chat page: the client (chat/client.html) inside CHAT_BASE_TEMPLATE."""
    base = conf.CHAT_BASE_TEMPLATE
    return render(
        request,
        "chat/home.html",
        {
            "chat_config": chat_config(request.user),
            "chat_base_template": base,
            "chat_embedded": base != "chat/base.html",
        },
    )


@require_safe
def favicon(request: HttpRequest) -> HttpResponseRedirect:
    """/favicon.ico, asked for by pages without an icon link (the admin's): the SVG icon.

    A redirect, not a permanent one: the static URL carries the file's hash, which changes.
    """
    response = HttpResponseRedirect(static("chat/favicon.svg"))
    patch_cache_control(response, max_age=FAVICON_MAX_AGE)
    return response


class LogoutView(auth_views.LogoutView):
    """Django's logout, which then tells the user on the login page that it happened."""

    def post(self, request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        """Log out, and leave a message for the next page (the session is gone: a cookie)."""
        response = super().post(request, *args, **kwargs)
        messages.success(request, _("You have been logged out."))
        return response


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


class ShardFailed(Exception):
    """One Redis server of the channel layer failed; the message names it by its index."""


async def _channel_layer_ok() -> bool:
    """True if the layer works: an event comes back (Redis: is published, the hub is live)."""
    layer = get_channel_layer()
    if redisconn.redis_configured():
        # Publish through this process's own layer connection, as a post does
        # (a fresh client could answer while that connection is still broken),
        # and require the hub's subscriber to be back too, so 200 means live
        # delivery works both ways. Every shard of a sharded layer, side by side:
        # a room on a shard that is down gets nothing live.
        pings = shards.group_on_each_shard(layer, events.PING_GROUP)

        async def ping(shard: int) -> None:
            # Its own deadline, within the check's: a shard that is down can hold
            # its connection's lock through other publishes' retries, and the
            # answer should still name it (not only time out as a whole).
            try:
                await asyncio.wait_for(
                    layer.group_send(pings[shard], {"type": "layer.ping"}), SHARD_TIMEOUT
                )
            except Exception as exc:
                raise ShardFailed(f"shard {shard}: {type(exc).__name__}") from exc

        await asyncio.gather(*(ping(shard) for shard in range(len(pings))))
        found = vars(layer).get("_chat_hub")
        return not (
            found is not None and found.loop is asyncio.get_running_loop() and found.failing
        )
    channel = await layer.new_channel()
    await layer.send(channel, {"type": "health.check"})
    received: str = (await layer.receive(channel))["type"]
    return received == "health.check"


async def _shared_redis_ok() -> bool:
    """True if the Redis of the rate limits and presence (REDIS_URL or Sentinel) answers PING."""

    def ping() -> bool:
        client = redisconn.sync_client(socket_connect_timeout=1, socket_timeout=1, retry=None)
        try:
            return bool(client.ping())
        finally:
            client.close()

    return await asyncio.to_thread(ping)


async def healthz(request: HttpRequest) -> JsonResponse:
    """200 when the database and the channel layer (and, if apart, REDIS_URL) answer, else 503.

    The body names what failed, and which shard of a sharded layer.
    """

    async def run(name: str, check: Callable[[], Awaitable[bool]]) -> str:
        try:
            return "ok" if await asyncio.wait_for(check(), HEALTH_TIMEOUT) else "failed"
        except Exception as exc:
            log.warning("Health check %s failed: %s", name, exc)
            return f"failed: {exc if isinstance(exc, ShardFailed) else type(exc).__name__}"

    named: dict[str, Callable[[], Awaitable[bool]]] = {
        "database": _database_check_once,
        "channel_layer": _channel_layer_ok,
    }
    if conf.REDIS_LAYER_URLS:  # the layer's shards are checked above; REDIS_URL is apart
        named["redis"] = _shared_redis_ok
    # Side by side, so the answer comes within HEALTH_TIMEOUT whatever is down.
    results = await asyncio.gather(*(run(name, check) for name, check in named.items()))
    checks = dict(zip(named, results, strict=True))
    healthy = all(v == "ok" for v in checks.values())
    return JsonResponse(
        {"status": "ok" if healthy else "unavailable", **checks}, status=200 if healthy else 503
    )


@login_not_required  # for Prometheus, not people: guarded by chat.metrics.may_read
@require_safe
def metrics(request: HttpRequest) -> HttpResponse:
    """Every metric in Prometheus' text format, for the token or an allowed address; else 403."""
    if not chat_metrics.may_read(request):
        return HttpResponseForbidden(
            "Metrics need the METRICS_TOKEN bearer token or an address in METRICS_ALLOW_IPS.",
            content_type="text/plain",
        )
    response = HttpResponse(chat_metrics.render(), content_type=chat_metrics.CONTENT_TYPE)
    patch_cache_control(response, no_store=True)
    return response


def _file_reader(request: HttpRequest) -> permissions.User:
    """Who asks for a file: the bearer token's user if the request has one, else the session's."""
    header = request.headers.get("Authorization")
    token = tokens.bearer_token(header) if header else None
    if token is not None:
        found = authenticate_token(token)
        return found.user if found is not None else AnonymousUser()
    return request.user


@login_not_required  # nobody is sent to log in: a file nobody may read is a plain 404
@require_safe
def attachment(request: HttpRequest, key: str, name: str | None = None) -> HttpResponseBase:
    """An attached file (``name``) or its thumbnail (no name), for who may read it; else 404.

    The answer never runs in the chat's origin: a download (``attachment``) for
    every type but four image types, no sniffing, and a sandbox CSP. Local
    storage: streamed here, or handed to nginx (CHAT_FILES_ACCEL_REDIRECT); a
    storage without local paths (S3): a redirect to a short-lived signed URL.
    """
    found = files.readable(user=_file_reader(request), key=key)
    if found is None or (name is None and not found.thumb_name):
        raise Http404("No such file.")
    if name is None:
        stored, content_type, shown = found.thumb_name, images.THUMB_TYPE, "thumb.webp"
    else:
        stored, content_type, shown = found.storage_name, found.content_type, found.name
    disposition = files.disposition(content_type, shown)
    store = files.storage()
    response: HttpResponseBase
    cache = "private, max-age=3600"
    try:
        store.path(stored)
    except NotImplementedError:  # no local path (S3): the storage serves it, briefly signed
        url = files.signed_url(store, stored, content_type=content_type, disposition=disposition)
        response = HttpResponseRedirect(url)
        # The redirect may be kept only while its signed URL is good.
        cache = f"private, max-age={conf.CHAT_FILES_URL_EXPIRES_SECONDS // 2}"
    else:
        accel = conf.CHAT_FILES_ACCEL_REDIRECT
        if accel:
            response = HttpResponse(content_type=content_type)
            response["X-Accel-Redirect"] = accel + quote(stored)
        else:
            try:
                response = FileResponse(store.open(stored, "rb"), content_type=content_type)
            except FileNotFoundError:
                raise Http404("No such file.") from None
    response["Content-Type"] = content_type
    response["Content-Disposition"] = disposition
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Cache-Control"] = cache
    return response
