"""/metrics: every metric moves when its event happens, the page is guarded, workers add up.

Each test scrapes, makes the event happen for real (a socket through the
real ASGI application, a real server process, Redis or PostgreSQL going
away), scrapes again and compares, parsing the text with prometheus_client's
own parser. The delivery engine's own events (a gap, a slow or failing
socket) are made as chat/tests/test_delivery.py makes them: a real hub and
database, and a client that stops reading or fails.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import yaml
from channels.db import database_sync_to_async
from channels.layers import InMemoryChannelLayer
from django.test import AsyncClient
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import connect as ws_connect

from chat import metrics, protocol
from chat.delivery import Delivery
from chat.errors import ErrorCode
from chat.hub import Hub
from chat.tests.test_delivery import Client, Owner, _post_many, joined, live, until
from testkit import ROOT, factories
from testkit.live import LiveServer, is_message, join, next_frame, open_ws, password_for
from testkit.proxy import TcpProxy
from testkit.servers import PostgresDatabase, free_port, postgres_base_url, start_redis

WAIT = 20.0  # seconds a condition may take on a loaded 2-core machine


class Scrape:
    """One /metrics answer, parsed: sample values by name and labels."""

    def __init__(self, text: str) -> None:
        self.samples: list[tuple[str, dict[str, str], float]] = [
            (sample.name, sample.labels, sample.value)
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        ]

    def names(self) -> set[str]:
        """Every sample name in the answer (histograms: _bucket, _count, _sum)."""
        return {name for name, _, _ in self.samples}

    def value(self, name: str, **labels: str) -> float:
        """The sum of the samples named ``name`` whose labels include ``labels`` (0 if none)."""
        return sum(
            value
            for sample, have, value in self.samples
            if sample == name and labels.items() <= have.items()
        )

    def by_label(self, name: str, label: str) -> dict[str, float]:
        """The samples named ``name``, by the value of their ``label``."""
        return {have[label]: value for sample, have, value in self.samples if sample == name}


async def scrape() -> Scrape:
    """GET /metrics from this process, as Prometheus on the same host would (127.0.0.1)."""
    response = await AsyncClient().get("/metrics")
    assert response.status_code == 200, response.content
    return Scrape(response.content.decode())


async def scrape_until(check: Callable[[Scrape], bool], get=None, timeout: float = WAIT) -> Scrape:
    """Scrape (with ``get``, default this process) until ``check`` holds; the last scrape."""
    get = get or scrape
    deadline = time.monotonic() + timeout
    while True:
        now = await get()
        if check(now):
            return now
        assert time.monotonic() < deadline, "the metrics did not get there in time"
        await asyncio.sleep(0.05)  # a poll of a condition, not a wait for time to pass


def scrape_live(server: LiveServer, headers: dict[str, str] | None = None) -> Scrape:
    """GET a real server's /metrics from loopback."""
    request = urllib.request.Request(server.url + "metrics", headers=headers or {})
    with urllib.request.urlopen(request, timeout=10) as response:
        return Scrape(response.read().decode())


def live_getter(server: LiveServer) -> Callable[[], object]:
    async def get() -> Scrape:
        return await asyncio.to_thread(scrape_live, server)

    return get


pytestmark = pytest.mark.django_db(transaction=True)


# --- sockets, handshakes, rooms ---------------------------------------------------


async def test_open_sockets_and_connects_follow_sockets_opening_and_closing(connect, alice, bob):
    """Two sockets open: +2 sockets (this process too) and +2 connects; closed: back down."""
    before = await scrape()
    first, second = await connect(alice), await connect(bob)
    opened = await scrape()
    assert opened.value("multichat_sockets") == before.value("multichat_sockets") + 2
    assert (
        opened.value("multichat_process_sockets") == before.value("multichat_process_sockets") + 2
    )
    connects = "multichat_socket_connects_total"
    assert opened.value(connects) == before.value(connects) + 2
    await first.close()
    await second.close()
    after = await scrape_until(
        lambda s: s.value("multichat_sockets") == before.value("multichat_sockets")
    )
    assert after.value("multichat_process_sockets") == before.value("multichat_process_sockets")


async def test_joined_rooms_follow_join_leave_and_disconnect(connect, alice, room):
    """Joining two rooms counts two; leaving one drops one; the socket ending drops the rest."""
    other = await database_sync_to_async(factories.create_room)("Random")
    before = (await scrape()).value("multichat_joined_rooms")
    socket = await connect(alice)
    assert "join" in await socket.join(room.pk)
    assert "join" in await socket.join(other.pk)
    assert "join" in await socket.join(room.pk)  # a rejoin holds the same room
    assert (await scrape()).value("multichat_joined_rooms") == before + 2
    await socket.send({"command": "leave", "room": other.pk})
    await socket.recv_until(lambda f: "leave" in f)
    assert (await scrape()).value("multichat_joined_rooms") == before + 1
    await socket.close()
    await scrape_until(lambda s: s.value("multichat_joined_rooms") == before)


async def test_a_handshake_from_another_site_counts_as_refused_origin(connect, alice):
    """A foreign Origin is refused (403) and counted under reason origin."""
    name = "multichat_socket_refusals_total"
    before = (await scrape()).value(name, reason="origin")
    await connect(alice, origin="https://evil.example", expect=False)
    assert (await scrape()).value(name, reason="origin") == before + 1


async def test_a_socket_without_login_counts_as_refused_login(connect, transactional_db):
    """An anonymous socket is closed 4401 and counted under reason login, not as open."""
    before = await scrape()
    socket = await connect(None)
    assert (await socket.raw())["error"] == ErrorCode.USER_HAS_TO_LOGIN
    after = await scrape()
    name = "multichat_socket_refusals_total"
    assert after.value(name, reason="login") == before.value(name, reason="login") + 1
    assert after.value("multichat_sockets") == before.value("multichat_sockets")


async def test_one_socket_too_many_counts_as_refused_too_many_sockets(connect, alice, settings):
    """Past CHAT_MAX_SOCKETS_PER_USER the socket is closed and counted; the open one stays."""
    settings.CHAT_MAX_SOCKETS_PER_USER = 1
    before = await scrape()
    await connect(alice)
    refused = await connect(alice)
    assert (await refused.raw())["error"] == ErrorCode.TOO_MANY_CONNECTIONS
    after = await scrape()
    name = "multichat_socket_refusals_total"
    assert after.value(name, reason="too_many_sockets") == (
        before.value(name, reason="too_many_sockets") + 1
    )
    assert after.value("multichat_sockets") == before.value("multichat_sockets") + 1


# --- posts, deliveries, latency, replays ------------------------------------------


async def test_a_post_counts_once_and_is_delivered_to_each_member_with_its_latency(
    connect, alice, bob, room, settings
):
    """One post to two members: posts +1, deliveries +2 (one per socket), one latency sample."""
    settings.NOTIFY_USERS_ON_ENTER_OR_LEAVE_ROOMS = False
    poster, reader = await connect(alice), await connect(bob)
    for socket in (poster, reader):
        assert "join" in await socket.join(room.pk)
        await socket.until_quiet(0.3)
    before = await scrape()
    await poster.send({"command": "send", "room": room.pk, "message": "hello"})
    for socket in (poster, reader):
        assert (await socket.recv())["message"] == "hello"
    after = await scrape()
    assert after.value("multichat_posts_total") == before.value("multichat_posts_total") + 1
    deliveries = "multichat_deliveries_total"
    assert after.value(deliveries) >= before.value(deliveries) + 2
    count = "multichat_delivery_latency_seconds_count"
    assert after.value(count) == before.value(count) + 1  # once per event in this process
    latency = after.value("multichat_delivery_latency_seconds_sum") - before.value(
        "multichat_delivery_latency_seconds_sum"
    )
    assert 0 < latency < WAIT


async def test_a_resume_counts_one_replay_of_its_size(connect, alice, bob, room):
    """Three posts, then a join with since=0: one replay of three frames (sum and bucket)."""
    poster = await connect(alice)
    assert "join" in await poster.join(room.pk)
    for text in ("a", "b", "c"):
        await poster.send({"command": "send", "room": room.pk, "message": text})
        await poster.recv_until(lambda f, text=text: f.get("message") == text)
    before = await scrape()
    reader = await connect(bob)
    assert (await reader.join(room.pk, since=0))["replayed"] == 3
    after = await scrape()
    for sample, labels, grown in (
        ("multichat_replay_frames_count", {}, 1),
        ("multichat_replay_frames_sum", {}, 3),
        ("multichat_replay_frames_bucket", {"le": "5.0"}, 1),
        ("multichat_replay_frames_bucket", {"le": "2.0"}, 0),
    ):
        assert after.value(sample, **labels) == before.value(sample, **labels) + grown, sample
    assert [(await reader.recv())["message"] for _ in range(3)] == ["a", "b", "c"]
    assert "join" in await reader.join(room.pk)  # no since: no replay counted
    assert (await scrape()).value("multichat_replay_frames_count") == after.value(
        "multichat_replay_frames_count"
    )


@pytest.mark.parametrize(
    ("kind", "command"),
    [
        ("send", {"command": "send", "message": "hi"}),
        ("join", {"command": "join"}),
        ("history", {"command": "history"}),
        ("typing", {"command": "typing"}),
    ],
)
async def test_a_rate_limited_command_counts_under_its_kind(
    connect, alice, room, settings, kind, command
):
    """A command past its class's budget is refused RATE_LIMITED and counted under that kind."""
    rate, burst = {
        "send": ("CHAT_SEND_RATE", "CHAT_SEND_BURST"),
        "join": ("CHAT_JOIN_RATE", "CHAT_JOIN_BURST"),
        "history": ("CHAT_HISTORY_RATE", "CHAT_HISTORY_BURST"),
        "typing": ("CHAT_TYPING_RATE", "CHAT_TYPING_BURST"),
    }[kind]
    socket = await connect(alice)
    assert "join" in await socket.join(room.pk)
    setattr(settings, rate, 0.001)  # one token per 1,000 s: the second command is refused
    setattr(settings, burst, 1)
    before = await scrape()
    for _ in range(2):
        await socket.send({**command, "room": room.pk, "ref": kind})
    refused = await socket.recv_until(lambda f: "error" in f)
    assert refused["error"] == ErrorCode.RATE_LIMITED
    after = await scrape()
    name = "multichat_rate_limited_total"
    for other in ("send", "join", "history", "typing", "rooms"):
        grown = 1 if other == kind else 0
        assert after.value(name, kind=other) == before.value(name, kind=other) + grown, other


def test_creating_rooms_too_fast_counts_under_kind_rooms(alice, settings, client):
    """Past CHAT_ROOM_CREATE_BURST a REST room create is 429 and counted under kind rooms."""
    settings.CHAT_ROOM_CREATE_RATE = 0.001
    settings.CHAT_ROOM_CREATE_BURST = 1
    api = factories.bearer(alice)
    name = "multichat_rate_limited_total"
    before = Scrape(client.get("/metrics").content.decode())
    for title in ("One", "Two"):
        answer = api.post("/api/rooms", json.dumps({"title": title}), "application/json")
    assert answer.status_code == 429
    after = Scrape(client.get("/metrics").content.decode())
    assert after.value(name, kind="rooms") == before.value(name, kind="rooms") + 1
    assert after.value(name, kind="send") == before.value(name, kind="send")


# --- the delivery engine: gaps, slow and failing sockets ---------------------------


@pytest.fixture
async def fanout():
    """A hub of its own on channels' in-process layer (no probes), closed after the test."""
    made = Hub(InMemoryChannelLayer(), asyncio.get_running_loop(), probe=3600.0)
    yield made
    await made.close()


async def test_a_gap_filled_from_the_database_counts_its_frames(fanout, room, bob):
    """Seq 5 arrives after 0: one gap fill of four frames from the database."""
    client = Client()
    engine = Delivery(client, Owner(client.trace), fanout, label="user 7")
    await database_sync_to_async(_post_many)(room.pk, bob, 5)
    await joined(engine, room.pk, at=0)
    before = await scrape()
    fanout.deliver(live(room.pk, 5))
    await until(lambda: client.seqs(room.pk) == [1, 2, 3, 4, 5], timeout=WAIT)
    after = await scrape()
    count, total = "multichat_gap_fill_frames_count", "multichat_gap_fill_frames_sum"
    assert after.value(count) == before.value(count) + 1
    assert after.value(total) == before.value(total) + 4
    engine.close()


async def test_a_socket_behind_for_too_long_counts_as_dropped_slow(fanout, settings):
    """A client that stops reading past CHAT_SLOW_SOCKET_SECONDS: one slow drop, one room less."""
    settings.CHAT_SOCKET_QUEUE_MAX = 1
    settings.CHAT_SLOW_SOCKET_SECONDS = 0.05
    client = Client()
    owner = Owner(client.trace)
    engine = Delivery(client, owner, fanout, label="user 7")
    before = await scrape()
    await joined(engine, 1, at=0)
    client.reading.clear()
    for seq in (1, 2, 3):
        fanout.deliver(live(1, seq))
    await until(lambda: owner.gave_up is not None, timeout=WAIT)
    assert owner.gave_up == ([1], protocol.CLOSE_TOO_SLOW)
    after = await scrape()
    name = "multichat_sockets_dropped_total"
    assert after.value(name, reason="slow") == before.value(name, reason="slow") + 1
    assert after.value(name, reason="failed") == before.value(name, reason="failed")
    assert after.value("multichat_joined_rooms") == before.value("multichat_joined_rooms")


async def test_a_socket_whose_send_fails_counts_as_dropped_failed(fanout):
    """A send that raises closes the socket with 1011 and counts as a failed drop."""
    client = Client()
    engine = Delivery(client, Owner(client.trace), fanout, label="user 7")
    await joined(engine, 1, at=0)
    before = await scrape()
    client.failing = RuntimeError("injected send failure")
    fanout.deliver(live(1, 1))
    await until(lambda: client.closes() == [protocol.CLOSE_SERVER_ERROR], timeout=WAIT)
    name = "multichat_sockets_dropped_total"
    after = await scrape_until(
        lambda s: s.value(name, reason="failed") == before.value(name, reason="failed") + 1
    )
    assert after.value(name, reason="slow") == before.value(name, reason="slow")
    engine.close()


# --- the page's protection -------------------------------------------------------


def test_metrics_from_an_address_outside_the_allow_list_without_a_token_is_403(client, settings):
    """Not loopback (a proxied client, say) and no token: 403, and not a metric in the body."""
    settings.METRICS_TOKEN = ""
    response = client.get("/metrics", REMOTE_ADDR="203.0.113.7")
    assert response.status_code == 403
    assert b"multichat_" not in response.content
    assert client.get("/metrics").status_code == 200  # the test client's 127.0.0.1


def test_metrics_allow_list_takes_cidrs_and_ipv4_mapped_addresses(client, settings):
    """METRICS_ALLOW_IPS 10.0.0.0/8: 10.1.2.3 (also as ::ffff:10.1.2.3) in, loopback out."""
    from ipaddress import ip_network

    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOW_IPS = [ip_network("10.0.0.0/8")]
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="::ffff:10.1.2.3").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 403
    assert client.get("/metrics", REMOTE_ADDR="11.0.0.1").status_code == 403


def test_metrics_token_opens_the_page_from_anywhere_and_only_that_token(client, settings):
    """With METRICS_TOKEN set: its bearer header gets 200 from any address; a wrong one 403."""
    settings.METRICS_TOKEN = "s3cret-scrape-token"
    settings.METRICS_ALLOW_IPS = []
    outside = {"REMOTE_ADDR": "198.51.100.9"}
    good = client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-scrape-token", **outside)
    assert good.status_code == 200 and b"multichat_sockets" in good.content
    assert good["Content-Type"].startswith("text/plain")
    for header in ("Bearer s3cret-scrape-tokeN", "Bearer ", "Basic s3cret-scrape-token", ""):
        assert client.get("/metrics", HTTP_AUTHORIZATION=header, **outside).status_code == 403
    assert client.get("/metrics", **outside).status_code == 403


def test_no_token_setting_means_no_token_opens_the_page(client, settings):
    """METRICS_TOKEN unset: an empty bearer token is no key."""
    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOW_IPS = []
    response = client.get("/metrics", HTTP_AUTHORIZATION="Bearer ", REMOTE_ADDR="127.0.0.1")
    assert response.status_code == 403


def test_metrics_answers_a_logged_out_client_without_a_login_redirect(client):
    """/metrics is for Prometheus: no session needed, no redirect to the login page."""
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"


# --- the dashboard and alert rules ---------------------------------------------------

DEPLOY = Path(ROOT) / "deploy"
METRIC_NAME = re.compile(r"\bmultichat_[a-z0-9_]+")


def test_dashboard_and_alert_rules_parse_and_use_only_metrics_the_server_exports():
    """Every multichat_* name in the Grafana JSON and the rule file is in /metrics' answer."""
    dashboard = json.loads((DEPLOY / "grafana-dashboard.json").read_text())
    rules = yaml.safe_load((DEPLOY / "prometheus-alerts.yml").read_text())
    exported = Scrape(metrics.render().decode()).names()
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    assert exprs and all(METRIC_NAME.search(e) for e in exprs), "a panel shows no metric"
    alerts = [rule for group in rules["groups"] for rule in group["rules"]]
    assert {a["alert"] for a in alerts} >= {
        "MultichatRedisDown",
        "MultichatDatabaseDown",
        "MultichatDeliveryLatencyHigh",
        "MultichatErrorRateHigh",
        "MultichatHandshakeFailures",
    }
    for alert in alerts:
        assert alert["annotations"]["summary"] and alert["annotations"]["action"], alert["alert"]
    used = set(METRIC_NAME.findall(json.dumps(dashboard)))
    used |= {name for a in alerts for name in METRIC_NAME.findall(a["expr"])}
    assert used and used <= exported, sorted(used - exported)


# --- real server processes: workers, Redis and PostgreSQL outages ---------------------


@pytest.mark.redis
async def test_two_workers_behind_one_port_report_the_real_socket_total(
    database_url, transactional_db
):
    """WEB_CONCURRENCY=2: a scrape counts both workers' sockets; a killed worker's stop counting."""
    env = {"WEB_CONCURRENCY": "2", "CHAT_MAX_SOCKETS_PER_USER": "100"}
    server = LiveServer(database_url=database_url, extra_env=env).prepare()
    server.seed(users=["wanda"])
    server.start(timeout=60)
    sockets = []
    try:
        get = live_getter(server)
        cookie = await asyncio.to_thread(server.login_cookie, "wanda", password_for("wanda"))
        headers = {"Origin": server.url.rstrip("/"), "Cookie": cookie}
        per_worker: dict[str, float] = {}
        while len([n for n in per_worker.values() if n > 0]) < 2:
            assert len(sockets) < 60, f"every socket landed on one worker: {per_worker}"
            sockets.append(await ws_connect(server.ws_url, additional_headers=headers))
            opened = len(sockets)
            now = await scrape_until(lambda s, n=opened: s.value("multichat_sockets") == n, get)
            per_worker = now.by_label("multichat_process_sockets", "pid")
        for _ in range(10):  # several scrapes, answered by either worker: the same total
            assert (await get()).value("multichat_sockets") == len(sockets)
        assert sum(per_worker.values()) == len(sockets)
        # A worker killed (as a crash would) takes its sockets along: they no longer count.
        killed, survivor = sorted(per_worker)
        os.kill(int(killed), signal.SIGKILL)
        after = await scrape_until(
            lambda s: s.value("multichat_sockets") == per_worker[survivor], get
        )
        assert killed not in after.by_label("multichat_process_sockets", "pid")
        for ws in sockets:
            await ws.close()
        await scrape_until(lambda s: s.value("multichat_sockets") == 0, get)
    finally:
        for ws in sockets:
            await ws.close()
        server.stop()


@pytest.mark.redis
async def test_redis_going_away_shows_the_layer_down_with_errors_until_it_is_back(
    database_url, transactional_db
):
    """Redis stopped: layer_up 0, subscribe and publish errors grow; restarted: layer_up 1."""
    port = free_port()
    redis = start_redis(port)
    env = {"CHANNEL_LAYER_PREFIX": f"mcmetrics-{uuid.uuid4().hex[:8]}", "CHAT_SEND_RATE": "0"}
    server = LiveServer(database_url=database_url, redis_url=redis.url, extra_env=env).prepare()
    room = server.seed(users=["rita"], rooms=["General"]).rooms["General"]
    server.start(timeout=40)
    get = live_getter(server)
    ws = None
    try:
        ws = await open_ws(server, "rita")
        await join(ws, room)
        await ws.send(json.dumps({"command": "send", "room": room, "message": "before"}))
        await next_frame(ws, is_message, timeout=10)
        before = await get()
        assert before.value("multichat_channel_layer_up") == 1
        errors = "multichat_channel_layer_errors_total"
        subscribe_errors = before.value(errors, operation="subscribe")
        publish_errors = before.value(errors, operation="publish")
        redis.stop()
        down = await scrape_until(
            lambda s: (
                s.value("multichat_channel_layer_up") == 0
                and s.value(errors, operation="subscribe") > subscribe_errors
            ),
            get,
        )
        assert down.value(errors, operation="subscribe") > 0
        # A read mark stores, then publishes to the user's sockets: that publish fails.
        await ws.send(json.dumps({"command": "read", "room": room, "seq": 1}))
        await scrape_until(
            lambda s: s.value(errors, operation="publish") > publish_errors,
            get,
        )
        redis = start_redis(port)
        await scrape_until(lambda s: s.value("multichat_channel_layer_up") == 1, get, timeout=40)
    finally:
        if ws is not None:
            await ws.close()
        server.stop()
        redis.stop()


@pytest.mark.postgres
@pytest.mark.skipif(postgres_base_url() is None, reason="needs DATABASE_URL on PostgreSQL")
async def test_the_database_going_away_shows_it_down_with_errors_and_refused_handshakes():
    """PostgreSQL cut: a handshake is refused (database), errors grow, database_up 0; back: 1."""
    database = PostgresDatabase.create(postgres_base_url())
    target = urlsplit(database.url)
    proxy = TcpProxy(target.hostname, target.port or 5432).start()
    through = target._replace(netloc=f"{target.username}@127.0.0.1:{proxy.port}")
    server = LiveServer(
        database_url=urlunsplit(through), redis_url=os.environ.get("REDIS_URL")
    ).prepare()
    server.seed(users=["alice"])
    server.start(timeout=40)
    get = live_getter(server)
    try:
        cookie = await asyncio.to_thread(server.login_cookie, "alice", password_for("alice"))
        headers = {"Origin": server.url.rstrip("/"), "Cookie": cookie}
        async with ws_connect(server.ws_url, additional_headers=headers):
            before = await scrape_until(lambda s: s.value("multichat_sockets") == 1, get)
        assert before.value("multichat_database_up") == 1
        proxy.cut("refuse")
        async with ws_connect(server.ws_url, additional_headers=headers) as refused:
            frame = json.loads(await asyncio.wait_for(refused.recv(), WAIT))
            assert frame["error"] == ErrorCode.SERVICE_UNAVAILABLE
        after = await get()
        refusals = "multichat_socket_refusals_total"
        assert after.value(refusals, reason="database") == (
            before.value(refusals, reason="database") + 1
        )
        assert after.value("multichat_database_errors_total") > before.value(
            "multichat_database_errors_total"
        )
        assert after.value("multichat_database_up") == 0
        proxy.restore()
        async with ws_connect(server.ws_url, additional_headers=headers):
            await scrape_until(lambda s: s.value("multichat_database_up") == 1, get)
    finally:
        server.stop()
        proxy.stop()
        database.drop()


def test_an_operators_metrics_directory_is_emptied_of_old_files_at_start(tmp_path, monkeypatch):
    """config.server empties an operator's PROMETHEUS_MULTIPROC_DIR of old metric files."""
    from config import server

    stale = tmp_path / "counter_123.db"
    stale.write_bytes(b"old counts")
    keep = tmp_path / "README"
    keep.write_text("not a metric file")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    server.prepare_metrics_dir(1)
    assert not stale.exists() and keep.exists()


def test_several_workers_get_a_fresh_metrics_directory(monkeypatch):
    """WEB_CONCURRENCY > 1 without PROMETHEUS_MULTIPROC_DIR: config.server makes an empty one."""
    from config import server

    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    server.prepare_metrics_dir(1)
    assert "PROMETHEUS_MULTIPROC_DIR" not in os.environ
    server.prepare_metrics_dir(2)
    made = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    assert made.is_dir() and list(made.iterdir()) == []
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR")  # this test process stays single-process
