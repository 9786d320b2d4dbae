"""Real server processes for end-to-end tests and the benchmark: uvicorn on a free loopback port.

Each LiveServer has its own data directory (SQLite file) unless it is given
a DATABASE_URL, and optionally a REDIS_URL; several servers given the same
two share them, as production processes do. Static files are collected
once per process and shared by every server (they are the same files).
Users, rooms and tokens are made by ``manage.py testkit`` on the server's
database (testkit/management/commands/testkit.py).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import functools
import http.cookiejar
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from websockets.asyncio.client import ClientConnection, connect

from testkit import ROOT
from testkit.servers import MIGRATED_DATABASES, free_port, port_open

SECRET_KEY = "live-server-test-secret-key-not-for-production"
Frame = dict[str, Any]


def server_environment(values: dict[str, str]) -> dict[str, str]:
    """This process's environment without its database and Redis, production settings, values."""
    own = ("DATABASE_URL", "REDIS_URL", "REDIS_LAYER_URLS")
    return {
        **{k: v for k, v in os.environ.items() if k not in own},
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "SECRET_KEY": SECRET_KEY,
        "SECURE_COOKIES": "0",
        "PYTHONUNBUFFERED": "1",
        **values,
    }


def manage(env: dict[str, str], *args: str) -> str:
    """Run ``manage.py ARGS`` with ``env``; return its output, raising if it failed."""
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def password_for(username: str) -> str:
    """The password of a user that LiveServer.seed makes (and open_ws logs in with)."""
    return f"{username}-pw-1234"


@dataclass(frozen=True)
class Seeded:
    """What LiveServer.seed made: room ids by title, token plaintexts by username."""

    rooms: dict[str, int]
    tokens: dict[str, str]


@functools.cache
def collected_static() -> str:
    """A STATIC_ROOT collected once for every server of this process (removed at exit)."""
    root = tempfile.mkdtemp(prefix="multichat-static-")
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    env = server_environment({"DATA_DIR": root, "STATIC_ROOT": root})
    manage(env, "collectstatic", "--noinput", "-v0")
    return root


@functools.cache
def migrated_sqlite() -> str:
    """A directory holding a SQLite database migrated with config.settings (removed at exit).

    Every file migrate leaves there is copied into a new server's DATA_DIR.
    What a migrate makes depends on the settings module only (INSTALLED_APPS
    and the migrations; no setting read from the environment changes them).
    """
    root = tempfile.mkdtemp(prefix="multichat-migrated-")
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    manage(server_environment({"DATA_DIR": root, "STATIC_ROOT": collected_static()}), "migrate",
           "--noinput", "-v0")  # fmt: skip
    return root


class LiveServer:
    """One uvicorn process serving config.asgi:application."""

    def __init__(
        self,
        *,
        database_url: str | None = None,
        redis_url: str | None = None,
        data_dir: str | None = None,
        extra_env: dict[str, str] | None = None,
        command: list[str] | None = None,
        host: str = "127.0.0.1",
        prefix: list[str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.host = host  # the address it listens on (and clients use): a namespace's, say
        self.data_dir = data_dir or tempfile.mkdtemp(prefix="multichat-live-")
        self.port = free_port()
        self.env = server_environment(
            {
                "DATA_DIR": self.data_dir,
                "STATIC_ROOT": collected_static(),
                "HOST": host,
                "PORT": str(self.port),
                **(extra_env or {}),
            }
        )
        if database_url:
            self.env["DATABASE_URL"] = database_url
        if redis_url:
            self.env["REDIS_URL"] = redis_url
            self.env.setdefault("CHANNEL_LAYER_PREFIX", f"mclive-{self.port}")
        # Another ASGI server's command line ({port} is filled in); default config.server.
        self.command = command or [sys.executable, "-m", "config.server"]
        # Run before the command, e.g. ``ip netns exec NS`` (testkit.netns); not for manage.py.
        self.prefix = prefix or []
        # Where the command runs: the checkout, or elsewhere for an installed wheel's server.
        self.cwd = cwd or ROOT
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = Path(self.data_dir) / f"server-{self.port}.log"

    @property
    def url(self) -> str:
        """The server's http:// base URL, ending in /."""
        return f"http://{self.host}:{self.port}/"

    @property
    def ws_url(self) -> str:
        """The chat socket's ws:// URL."""
        return f"ws://{self.host}:{self.port}/chat/stream/"

    def manage(self, *args: str) -> str:
        """Run a manage.py command against this server's database; return its output."""
        return manage(self.env, *args)

    def prepare(self) -> LiveServer:
        """Migrate the database (static files are collected once, see collected_static).

        A new SQLite database is a copy of one migrated once per settings
        module (migrated_sqlite), and a PostgreSQL one made ``migrated``
        (PostgresDatabase.create) is left as it is: a migrate is a Django
        start of its own, ~3 s on the CI machine, and the suite prepares
        servers dozens of times.
        """
        url = self.env.get("DATABASE_URL")
        target = Path(self.data_dir) / "db.sqlite3"  # config.settings' SQLite database
        if self.env["DJANGO_SETTINGS_MODULE"] != "config.settings":
            self.manage("migrate", "--noinput", "-v0")
        elif url is not None:
            if url not in MIGRATED_DATABASES:
                self.manage("migrate", "--noinput", "-v0")
        elif target.exists():
            self.manage("migrate", "--noinput", "-v0")
        else:
            for made in Path(migrated_sqlite()).iterdir():
                shutil.copyfile(made, Path(self.data_dir) / made.name)
        return self

    def testkit(self, action: str, **params: object) -> Any:
        """Run ``manage.py testkit ACTION`` on this server's database; return its result."""
        env = {**self.env, "DJANGO_SETTINGS_MODULE": "testkit.settings"}
        output = manage(env, "testkit", action, "--json", json.dumps(params))
        return json.loads(output.strip().splitlines()[-1])

    def seed(
        self,
        *,
        users: Iterable[str] = (),
        staff: Iterable[str] = (),
        rooms: Iterable[str] = (),
        staff_rooms: Iterable[str] = (),
        tokens: Iterable[str] = (),
    ) -> Seeded:
        """Make users and staff users (password ``password_for(name)``), rooms, staff-only
        rooms and a token for each user in ``tokens``, in order, in one manage.py run."""
        calls: list[tuple[str, dict[str, object]]] = []
        for names, is_staff in ((users, False), (staff, True)):
            calls += [("user", {"username": n, "password": password_for(n), "staff": is_staff})
                      for n in names]  # fmt: skip
        for titles, staff_only in ((rooms, False), (staff_rooms, True)):
            calls += [("room", {"title": title, "staff_only": staff_only}) for title in titles]
        calls += [("token", {"username": n}) for n in tokens]
        results = self.testkit("batch", calls=calls)
        made = Seeded(rooms={}, tokens={})
        for (action, params), result in zip(calls, results, strict=True):
            if action == "room":
                made.rooms[str(params["title"])] = result
            elif action == "token":
                made.tokens[str(params["username"])] = result
        return made

    def create_room(self, title: str, *, staff_only: bool = False) -> int:
        """Create a room; return its id."""
        room_id: int = self.testkit("room", title=title, staff_only=staff_only)
        return room_id

    def create_token(self, username: str, name: str = "tests") -> str:
        """Create an API token for ``username`` in this server's database; return its plaintext."""
        token: str = self.testkit("token", username=username, name=name)
        return token

    def execute_sql(self, sql: str, params: tuple[object, ...] = ()) -> None:
        """Run one statement on the server's database behind its back: no signal, no notice.

        This is how a change made while the channel layer is down looks to
        the server's sockets. ``sql`` uses ``%s`` placeholders.
        """
        if "DATABASE_URL" in self.env:
            with psycopg.connect(self.env["DATABASE_URL"], autocommit=True) as conn:
                conn.execute(sql, params)
            return
        with contextlib.closing(sqlite3.connect(Path(self.data_dir) / "db.sqlite3")) as db:
            db.execute(sql.replace("%s", "?"), params)
            db.commit()

    def query(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
        """The rows of one query on the server's database (``%s`` placeholders)."""
        if "DATABASE_URL" in self.env:
            with psycopg.connect(self.env["DATABASE_URL"], autocommit=True) as conn:
                return list(conn.execute(sql, params).fetchall())
        with contextlib.closing(sqlite3.connect(Path(self.data_dir) / "db.sqlite3")) as db:
            return list(db.execute(sql.replace("%s", "?"), params).fetchall())

    def restart(self, timeout: float = 20) -> LiveServer:
        """Stop the server gracefully and start it again on the same port."""
        self.stop()
        return self.start(timeout)

    def start(self, timeout: float = 20) -> LiveServer:
        """Start uvicorn and wait until it answers /healthz."""
        log = open(self.log_path, "ab")  # noqa: SIM115 (closed with the process)
        self.process = process = subprocess.Popen(
            [*self.prefix, *(part.format(port=self.port) for part in self.command)],
            cwd=self.cwd,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"The server exited early:\n{self.log()}")
            if port_open(self.host, self.port) and health(self) == 200:
                return self
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"The server did not become healthy:\n{self.log()}")
            time.sleep(0.1)

    def terminate(self) -> subprocess.Popen[bytes]:
        """Send SIGTERM and return at once (the process drains and exits by itself)."""
        assert self.process is not None, "start() the server first"
        self.process.send_signal(signal.SIGTERM)
        return self.process

    def successor(self) -> LiveServer:
        """A server for the same place: same port, data, database, Redis and settings; not started.

        What a deploy starts once the old process stopped listening (see terminate).
        """
        twin = LiveServer(data_dir=self.data_dir, command=self.command, host=self.host)
        twin.prefix = self.prefix
        twin.port = self.port
        twin.env = dict(self.env)
        twin.log_path = self.log_path.with_name(f"server-{self.port}-{time.monotonic_ns()}.log")
        return twin

    def stop(self) -> None:
        """Stop the process gracefully (SIGTERM), killing it if it hangs."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def kill(self) -> None:
        """Kill the process at once (SIGKILL), as a crash would."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def log(self) -> str:
        """What the server printed so far."""
        try:
            return self.log_path.read_text(errors="replace")[-5000:]
        except OSError:
            return ""

    def login_cookie(self, username: str, password: str) -> str:
        """Log in through the real login form; return the Cookie header for the socket."""
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        page = opener.open(self.url + "login/", timeout=10).read().decode()
        found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
        if found is None:
            raise RuntimeError(f"The login page has no CSRF token:\n{page[:2000]}")
        data = urllib.parse.urlencode(
            {"username": username, "password": password, "csrfmiddlewaretoken": found.group(1)}
        ).encode()
        request = urllib.request.Request(
            self.url + "login/", data=data, headers={"Referer": self.url + "login/"}
        )
        opener.open(request, timeout=10)
        cookies = {c.name: c.value for c in jar}
        if "sessionid" not in cookies:
            raise RuntimeError(f"Logging in as {username} failed")
        return "; ".join(f"{k}={v}" for k, v in cookies.items())


# --- real-socket helpers ---------------------------------------------------


async def open_ws(
    server: LiveServer, user: str | None, *, origin: str | None = None, **options: Any
) -> ClientConnection:
    """A real WebSocket to ``server``, logged in as ``user`` (password ``password_for(user)``).

    ``options`` go to websockets' ``connect`` (e.g. ``max_queue``).
    """
    headers = {"Origin": origin or server.url.rstrip("/")}
    if user:
        password = password_for(user)
        headers["Cookie"] = await asyncio.to_thread(server.login_cookie, user, password)
    options.setdefault("max_size", 2**20)
    return await connect(server.ws_url, additional_headers=headers, **options)


async def next_frame(
    ws: ClientConnection, predicate: Callable[[Frame], bool] = lambda f: True, timeout: float = 5
) -> Frame:
    """The next frame from ``ws`` matching ``predicate``."""
    async with asyncio.timeout(timeout):
        while True:
            frame: Frame = json.loads(await ws.recv())
            if predicate(frame):
                return frame


def is_message(frame: Frame) -> bool:
    """True for a stored chat message (type 0, with a seq)."""
    return frame.get("msg_type") == 0 and "seq" in frame


async def join(ws: ClientConnection, room: int, **fields: object) -> Frame:
    """Join ``room`` and return the reply (or the error)."""
    await ws.send(json.dumps({"command": "join", "room": room, **fields}))
    return await next_frame(ws, lambda f: "join" in f or "error" in f)


def healthz(base: str, timeout: float = 5) -> tuple[int, dict[str, Any]]:
    """GET ``base``/healthz: its status and JSON body (0 and {} when it does not answer in time)."""
    try:
        with urllib.request.urlopen(base + "healthz", timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())
    except OSError:
        return 0, {}


def health(server: LiveServer) -> int:
    """The status code of the server's /healthz (0: not answering at all)."""
    return healthz(server.url)[0]


async def wait_for_health(server: LiveServer, status: int, timeout: float = 10) -> None:
    """Wait until the server's /healthz answers ``status``."""
    async with asyncio.timeout(timeout):
        while await asyncio.to_thread(health, server) != status:  # noqa: ASYNC110
            await asyncio.sleep(0.2)
