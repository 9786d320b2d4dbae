"""What docs/operations.md tells an operator to do, done for real: rotating SECRET_KEY,
backing up and restoring PostgreSQL."""

import asyncio
import json
import re
import subprocess
import urllib.request
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from testkit import ROOT
from testkit.live import LiveServer, is_message, join, next_frame, open_ws, password_for
from testkit.servers import PostgresDatabase, postgres_base_url

OLD_KEY = "old-secret-key-for-the-rotation-test-" + "o" * 30
NEW_KEY = "new-secret-key-for-the-rotation-test-" + "n" * 30


def _page(server: LiveServer, cookie: str) -> tuple[int, str]:
    """The chat page's status for the session in ``cookie`` (302: sent to log in), and the
    cookie as a browser holds it afterwards (the page may have moved the session)."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(NoRedirect)
    request = urllib.request.Request(server.url, headers={"Cookie": cookie})
    try:
        response = opener.open(request, timeout=10)
    except urllib.error.HTTPError as error:
        response = error
    with response:
        jar = dict(part.split("=", 1) for part in cookie.split("; "))
        for header in response.headers.get_all("Set-Cookie") or []:
            name, value = header.split(";", 1)[0].split("=", 1)
            jar[name] = value
        return response.status, "; ".join(f"{k}={v}" for k, v in jar.items())


async def _socket_user_joins(server: LiveServer, cookie: str, room: int) -> bool:
    """True if a socket with ``cookie`` is let in and joins ``room``; False if told to log in."""
    headers = {"Origin": server.url.rstrip("/"), "Cookie": cookie}
    async with connect(server.ws_url, additional_headers=headers) as ws:
        try:
            reply = await join(ws, room)
        except ConnectionClosed as closed:  # told to log in and closed before the join got in
            assert closed.rcvd is not None and closed.rcvd.code == 4401
            return False
        if reply.get("error") == "USER_HAS_TO_LOGIN":
            return False
        assert "join" in reply, reply
        return True


@pytest.mark.once
async def test_rotating_secret_key_keeps_everyone_logged_in_through_the_fallback(tmp_path):
    """SECRET_KEY rotation as docs/operations.md says: the old key as a fallback first.

    Sessions made under the old key stay valid, on the page and on the socket;
    a socket must not cycle the session (it cannot send the new cookie), so a
    user whose socket connected first is still logged in on the page. Once the
    page was visited the session is on the new key and survives dropping the
    fallback; a session nobody used during the rotation is then logged out.
    """
    live = LiveServer(extra_env={"SECRET_KEY": OLD_KEY}).prepare()
    room = live.seed(users=["alice", "bob"], rooms=["General"]).rooms["General"]
    live.start()
    try:
        alice = live.login_cookie("alice", password_for("alice"))
        bob = live.login_cookie("bob", password_for("bob"))
        assert await _socket_user_joins(live, alice, room)

        live.stop()
        live.env.update(SECRET_KEY=NEW_KEY, SECRET_KEY_FALLBACKS=OLD_KEY)
        live.start()
        assert await _socket_user_joins(live, alice, room)  # socket first: session untouched
        status, moved = _page(live, alice)
        assert status == 200  # ...so the page still knows alice, and moves her to the new key
        assert moved != alice
        assert await _socket_user_joins(live, moved, room)

        live.stop()
        del live.env["SECRET_KEY_FALLBACKS"]
        live.start()
        assert await _socket_user_joins(live, moved, room)
        assert _page(live, moved)[0] == 200
        assert not await _socket_user_joins(live, bob, room)  # never used while rotating
        assert _page(live, bob)[0] == 302
    finally:
        live.stop()


@pytest.mark.once
def test_secret_key_fallbacks_file_is_read_one_key_per_line(tmp_path):
    """SECRET_KEY_FALLBACKS_FILE: one key per line, blank lines skipped, added to the list."""
    keys = tmp_path / "fallbacks"
    keys.write_text("first-old-key\n\n  second-old-key  \n")
    code = "from django.conf import settings; print(json.dumps(settings.SECRET_KEY_FALLBACKS))"
    live = LiveServer(
        extra_env={"SECRET_KEY_FALLBACKS": "env-key", "SECRET_KEY_FALLBACKS_FILE": str(keys)}
    )
    done = subprocess.run(
        [live.command[0], "-c", f"import django, json; django.setup(); {code}"],
        env=live.env,
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert json.loads(done.stdout) == ["env-key", "first-old-key", "second-old-key"]


@pytest.mark.postgres
async def test_a_backup_restored_into_a_new_database_carries_on_where_it_stopped(tmp_path):
    """pg_dump -Fc, then pg_restore into a fresh database, as docs/operations.md says.

    The restored server has every message, in order, and the next post in a
    room takes the next seq: nothing repeated or skipped after a restore.
    """
    base = postgres_base_url()
    if base is None:
        pytest.skip("needs PostgreSQL (runs in the PostgreSQL pass of scripts/test)")
    source, target = PostgresDatabase.create(base, migrated=True), PostgresDatabase.create(base)
    live = LiveServer(database_url=source.url).prepare()
    restored = LiveServer(database_url=target.url)
    try:
        room = live.seed(users=["alice"], rooms=["General"]).rooms["General"]
        live.start()
        async with await open_ws(live, "alice") as ws:
            await join(ws, room)
            for i in range(5):
                await ws.send(json.dumps({"command": "send", "room": room, "message": f"m{i}"}))
            for _ in range(5):
                await next_frame(ws, is_message)
        live.stop()

        dump = tmp_path / "multichat.dump"
        restore = ["pg_restore", "--no-owner", "--exit-on-error", "-d", target.url, str(dump)]
        for command in (["pg_dump", "-Fc", "-f", str(dump), source.url], restore):
            await asyncio.to_thread(subprocess.run, command, check=True)
        restored.start()
        async with await open_ws(restored, "alice") as ws:
            reply = await join(ws, room, since=0)
            assert reply["last_seq"] == 5
            replayed = [await next_frame(ws, is_message) for _ in range(5)]
            assert [(f["seq"], f["message"]) for f in replayed] == [
                (i + 1, f"m{i}") for i in range(5)
            ]
            await ws.send(json.dumps({"command": "send", "room": room, "message": "after"}))
            frame = await next_frame(ws, lambda f: is_message(f) and f["message"] == "after")
            assert frame["seq"] == 6
    finally:
        live.stop()
        restored.stop()
        source.drop()
        target.drop()


# A release's migrations run while the previous release still serves (docs/operations.md,
# "Upgrade"): they may add, never take away what the running code reads or writes.
EXPANDING = ("CreateModel", "AddIndex", "RemoveIndex", "AddConstraint", "RemoveConstraint",
             "AlterModelOptions", "AlterModelManagers", "RunPython", "RunSQL")  # fmt: skip
# Migrations that take something away, each shipped a release after the code stopped using
# it, named here by whoever writes one: (app, migration name).
CONTRACTING: set[tuple[str, str]] = set()


# Field options that change no column (what the admin, forms or Python see).
NOT_IN_THE_COLUMN = {"verbose_name", "help_text", "choices", "default", "validators", "editable",
                     "blank", "related_name", "related_query_name", "limit_choices_to",
                     "error_messages", "db_comment", "auto_now", "auto_now_add"}  # fmt: skip


def _column(field) -> tuple:
    """What of a field's definition the database column depends on (null apart)."""
    _, path, _, options = field.deconstruct()
    kept = {k: v for k, v in options.items() if k not in NOT_IN_THE_COLUMN | {"null"}}
    return path, sorted(kept.items(), key=lambda item: item[0])


@pytest.mark.once
def test_every_migration_leaves_the_schema_usable_by_the_release_before():
    """No migration removes or renames a table or column, adds a column old code would not
    fill (NOT NULL without a database default) or changes a column's type or tightens it."""
    from django.db.migrations.loader import MigrationLoader

    loader = MigrationLoader(None, ignore_no_migrations=True)
    problems = []
    for key in loader.graph.leaf_nodes():
        for node in loader.graph.forwards_plan(key):
            app = node[0]
            if app not in ("chat", "people", "api") or node in CONTRACTING:
                continue
            state = loader.project_state(node, at_end=False)
            existing = set(state.models)  # tables the release before has (not made here)
            for operation in loader.graph.nodes[node].operations:
                kind = type(operation).__name__
                if kind in ("AddField", "AlterField"):
                    model = (app, operation.model_name_lower)
                    new = operation.field
                    fills = new.null or new.many_to_many or new.has_db_default()
                    if model in existing and kind == "AddField" and not fills:
                        problems.append(f"{node}: {operation.describe()} is NOT NULL")
                    if model in existing and kind == "AlterField":
                        old = state.models[model].fields[operation.name]
                        if _column(old) != _column(new) or (new.null < old.null):
                            problems.append(f"{node}: {operation.describe()} changes the column")
                elif kind not in EXPANDING:
                    problems.append(f"{node}: {operation.describe()} takes something away")
                operation.state_forwards(app, state)
    assert not sorted(set(problems))


@pytest.mark.once
def test_the_compose_file_checks_health_by_healthz_and_lets_a_process_stop_gracefully(
    monkeypatch,
):
    """deploy/docker-compose.yml: the app is healthy when /healthz says so, nginx waits for a
    healthy app and uses deploy/nginx.conf, and a stopping app gets its shutdown time."""
    import yaml

    from config.server import shutdown_timeout

    monkeypatch.delenv("SHUTDOWN_TIMEOUT", raising=False)

    compose = yaml.safe_load((ROOT / "deploy" / "docker-compose.yml").read_text())
    app, nginx = compose["services"]["app"], compose["services"]["nginx"]
    assert "/healthz" in " ".join(app["healthcheck"]["test"])
    assert nginx["depends_on"]["app"]["condition"] == "service_healthy"
    assert "./nginx.conf:/etc/nginx/conf.d/default.conf:ro" in nginx["volumes"]
    assert app["stop_signal"] == "SIGTERM"
    assert int(app["stop_grace_period"].rstrip("s")) > shutdown_timeout()  # the default
    assert "ports" not in app  # only nginx reaches it (the image trusts X-Forwarded-For)


@pytest.mark.once
def test_the_compose_file_shares_the_files_volume_with_nginx_for_x_accel_redirect():
    """deploy/docker-compose.yml: the app writes attachments to the files volume, nginx reads
    the same volume at the path deploy/nginx.conf's internal /_files/ location aliases, and
    the app is told to hand files to nginx there."""
    import yaml

    compose = yaml.safe_load((ROOT / "deploy" / "docker-compose.yml").read_text())
    app, nginx = compose["services"]["app"], compose["services"]["nginx"]
    assert app["environment"]["CHAT_FILES_ACCEL_REDIRECT"] == "/_files/"
    assert "files:/data/files" in app["volumes"]
    assert "files:/data/files:ro" in nginx["volumes"]
    assert "files" in compose["volumes"]
    site = (ROOT / "deploy" / "nginx.conf").read_text()
    location = re.search(r"location /_files/ \{(.*?)\}", site, flags=re.S)
    assert location is not None
    assert "internal;" in location.group(1)
    assert "alias /data/files/;" in location.group(1)
    # DATA_DIR is /data in the image, and the local storage is DATA_DIR/files, made the app
    # user's in the image so that a new volume mounted there starts out writable by it.
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    assert "DATA_DIR=/data" in dockerfile
    assert re.search(r"mkdir -p /data/files && chown multichat /data /data/files", dockerfile)
