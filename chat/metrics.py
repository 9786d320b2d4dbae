"""Prometheus metrics: every metric of the server, declared once, and what moves them.

The code calls the objects and small functions below where each event
happens (one line at each call site); ``/metrics`` (chat.views.metrics)
renders them in Prometheus' text format.

Several uvicorn workers behind one port (WEB_CONCURRENCY > 1) share one
scrape: config/server.py then sets PROMETHEUS_MULTIPROC_DIR to a fresh
directory before the workers start, each worker writes its values to
files there (prometheus_client's multiprocess mode), and whichever worker
answers a scrape sums them (``render``). Gauges of open things use a
``live`` mode: a worker that is gone stops counting (``render`` forgets
the files of dead workers; a worker that exits cleanly forgets its own).
Separate server processes or hosts each have their own ``/metrics``,
scraped as separate targets.

The fan-out hot path stays cheap: nothing here is looked up by label per
delivery (labelled children are bound once, below), and deliveries and
their latency are recorded once per event per process (chat.hub), not
once per socket.
"""

from __future__ import annotations

import atexit
import glob
import ipaddress
import os
import time
from typing import Any

from django.http import HttpRequest
from django.utils.crypto import constant_time_compare
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
)

from chat import conf, ratelimit

# The *_created series (each counter's start time) would double the output for
# nothing Prometheus needs: a restart already shows as a counter reset.
disable_created_metrics()

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST

# Delivery latency is milliseconds on a healthy server; the top buckets catch outages.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Frames sent by one gap fill or replay (CHAT_REPLAY_MAX is 1000 by default).
SIZE_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000)

# --- sockets and rooms ----------------------------------------------------------

SOCKETS = Gauge(
    "multichat_sockets",
    "Chat sockets open (authenticated, holding a slot), summed over live workers.",
    multiprocess_mode="livesum",
)
PROCESS_SOCKETS = Gauge(
    "multichat_process_sockets",
    "Chat sockets open in this worker process (a pid label per live worker in multiprocess mode).",
    multiprocess_mode="liveall",
)
JOINED_ROOMS = Gauge(
    "multichat_joined_rooms",
    "Rooms joined by open sockets (a socket in three rooms counts three).",
    multiprocess_mode="livesum",
)
SOCKET_CONNECTS = Counter(
    "multichat_socket_connects",
    "Chat sockets accepted with a logged-in user.",
)
_REFUSALS = Counter(
    "multichat_socket_refusals",
    "Chat socket handshakes refused or closed at connect, by reason: origin (403, not this "
    "site's page), login (no valid session or token, 4401), too_many_sockets (4008), "
    "database (the database did not answer, 1013).",
    ["reason"],
)
REFUSAL_REASONS = ("origin", "login", "too_many_sockets", "database")
_refused = {reason: _REFUSALS.labels(reason) for reason in REFUSAL_REASONS}

# --- messages and their delivery -----------------------------------------------

POSTS = Counter(
    "multichat_posts",
    "Messages stored in rooms (socket, REST API and admin alike); rate() is posts per second.",
)
DELIVERIES = Counter(
    "multichat_deliveries",
    "Events with a frame (room posts, changes, notices; mentions) handed to local sockets, "
    "once per socket; "
    "rate() is deliveries per second.",
)
DELIVERY_LATENCY = Histogram(
    "multichat_delivery_latency_seconds",
    "From a stored event's publish (after its commit) to its hand-off to this process's "
    "sockets; observed once per event per process.",
    buckets=LATENCY_BUCKETS,
)
GAP_FILLS = Histogram(
    "multichat_gap_fill_frames",
    "Gaps a socket filled from the database (missed live events), by frames sent per fill.",
    buckets=SIZE_BUCKETS,
)
REPLAYS = Histogram(
    "multichat_replay_frames",
    "Joins with since (a resume), by frames replayed.",
    buckets=SIZE_BUCKETS,
)
_DROPS = Counter(
    "multichat_sockets_dropped",
    "Sockets the server gave up on, by reason: slow (behind for CHAT_SLOW_SOCKET_SECONDS, "
    "closed 4408) or failed (delivering to it failed, closed 1011).",
    ["reason"],
)
DROPPED_SLOW = _DROPS.labels("slow")
DROPPED_FAILED = _DROPS.labels("failed")

_RATE_LIMITED = Counter(
    "multichat_rate_limited",
    "Commands refused by a rate limit (RATE_LIMITED), by kind (the command class).",
    ["kind"],
)
_rate_limited = {kind: _RATE_LIMITED.labels(kind) for kind in ratelimit.COMMAND_CLASSES}

# --- the channel layer and the database ------------------------------------------

_LAYER_ERRORS = Counter(
    "multichat_channel_layer_errors",
    "Channel layer (Redis) failures, by operation: publish (an event not sent) or "
    "subscribe (the hub's receive, probe or resubscription failed).",
    ["operation"],
)
LAYER_PUBLISH_ERRORS = _LAYER_ERRORS.labels("publish")
LAYER_SUBSCRIBE_ERRORS = _LAYER_ERRORS.labels("subscribe")
LAYER_UP = Gauge(
    "multichat_channel_layer_up",
    "1 while the channel layer works for this process, 0 from a failure until it answers "
    "again (the minimum over live workers).",
    multiprocess_mode="livemin",
)
DATABASE_ERRORS = Counter(
    "multichat_database_errors",
    "Database failures a client was told of (SERVICE_UNAVAILABLE, 503, or a handshake "
    "closed 1013).",
)
DATABASE_UP = Gauge(
    "multichat_database_up",
    "1 if this process's last database call on the socket's pool worked, 0 if it failed "
    "(the minimum over live workers).",
    multiprocess_mode="livemin",
)
LAYER_UP.set(1)  # nothing has failed yet
DATABASE_UP.set(1)


def socket_opened() -> None:
    """A socket took its slot (chat.consumers)."""
    SOCKETS.inc()
    PROCESS_SOCKETS.inc()


def socket_closed() -> None:
    """A socket gave its slot back."""
    SOCKETS.dec()
    PROCESS_SOCKETS.dec()


def socket_refused(reason: str) -> None:
    """A handshake was refused or closed at connect for ``reason`` (one of REFUSAL_REASONS)."""
    _refused[reason].inc()


def delivered(event: dict[str, Any], sockets: int) -> None:
    """The hub handed ``event`` to ``sockets`` local sockets: count them, time the event once."""
    DELIVERIES.inc(sockets)
    published = event.get("published")
    if published is not None:
        DELIVERY_LATENCY.observe(max(0.0, time.time() - published))


def rate_limited(kind: str) -> None:
    """A command of class ``kind`` was refused RATE_LIMITED."""
    _rate_limited[kind].inc()


def layer_failed(operation: str) -> None:
    """The channel layer failed a ``publish`` or a ``subscribe``: count it, mark it down."""
    (LAYER_PUBLISH_ERRORS if operation == "publish" else LAYER_SUBSCRIBE_ERRORS).inc()
    LAYER_UP.set(0)


def database_failed() -> None:
    """A client was told the database does not answer."""
    DATABASE_ERRORS.inc()
    DATABASE_UP.set(0)


# --- rendering ----------------------------------------------------------------------


def may_read(request: HttpRequest) -> bool:
    """True for the METRICS_TOKEN bearer token (compared in constant time) or an allowed address.

    The address is REMOTE_ADDR: behind a proxy, uvicorn puts the client's
    there only for proxies in FORWARDED_ALLOW_IPS; otherwise every proxied
    request comes from the proxy's address (docs/security.md).
    """
    token = conf.METRICS_TOKEN
    if token:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and constant_time_compare(given.strip(), token):
            return True
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    if address.version == 6 and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    return any(address in network for network in conf.METRICS_ALLOW_IPS)


def multiprocess_dir() -> str | None:
    """The multiprocess mode's directory, or None in single-process mode."""
    return os.environ.get(MULTIPROC_ENV) or None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process holds the pid: not ours, but alive
    return True


def forget_dead_workers(path: str) -> None:
    """Drop the live gauges of workers that are gone (killed, crashed) from ``path``.

    A worker that exits cleanly does this for itself (atexit below); one
    that is killed leaves its files, which would count its sockets forever.
    """
    for name in glob.glob(os.path.join(path, "gauge_live*_*.db")):
        pid = os.path.basename(name).rsplit("_", 1)[-1].removesuffix(".db")
        if pid.isdigit() and not _alive(int(pid)):
            multiprocess.mark_process_dead(int(pid), path)


def render() -> bytes:
    """Every metric in Prometheus' text format: this process's, or all workers' summed."""
    path = multiprocess_dir()
    if path is None:
        return generate_latest(REGISTRY)
    forget_dead_workers(path)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path)
    return generate_latest(registry)


if multiprocess_dir() is not None:
    _pid = os.getpid()
    atexit.register(lambda: multiprocess.mark_process_dead(_pid))
