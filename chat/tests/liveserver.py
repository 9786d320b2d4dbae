"""Real server processes for end-to-end tests: uvicorn on a free loopback port.

Each LiveServer has its own data directory (SQLite file) unless it is given
a DATABASE_URL, and optionally a REDIS_URL; several servers given the same
two share them, as production processes do.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.cookiejar
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

from chat.tests.servers import free_port, port_open

ROOT = Path(__file__).resolve().parents[2]


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
    ):
        self.data_dir = data_dir or tempfile.mkdtemp(prefix="multichat-live-")
        self.port = free_port()
        self.env = {
            **{k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")},
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "SECRET_KEY": "live-server-test-secret-key-not-for-production",
            "SECURE_COOKIES": "0",
            "DATA_DIR": self.data_dir,
            "STATIC_ROOT": str(Path(self.data_dir) / "static"),
            "PYTHONUNBUFFERED": "1",
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            **(extra_env or {}),
        }
        if database_url:
            self.env["DATABASE_URL"] = database_url
        if redis_url:
            self.env["REDIS_URL"] = redis_url
            self.env.setdefault("CHANNEL_LAYER_PREFIX", f"mclive-{self.port}")
        # Another ASGI server's command line ({port} is filled in); default config.server.
        self.command = command or [sys.executable, "-m", "config.server"]
        self.process: subprocess.Popen | None = None
        self.log_path = Path(self.data_dir) / f"server-{self.port}.log"

    @property
    def url(self) -> str:
        """The server's http:// base URL, ending in /."""
        return f"http://127.0.0.1:{self.port}/"

    @property
    def ws_url(self) -> str:
        """The chat socket's ws:// URL."""
        return f"ws://127.0.0.1:{self.port}/chat/stream/"

    def manage(self, *args: str) -> str:
        """Run a manage.py command against this server's database; return its output."""
        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if done.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def prepare(self) -> LiveServer:
        """Migrate the database and collect static files (as scripts/run does)."""
        self.manage("migrate", "--noinput", "-v0")
        self.manage("collectstatic", "--noinput", "-v0")
        return self

    def create_user(self, username: str, password: str, *, staff: bool = False) -> None:
        """Create a user in this server's database."""
        self.manage(
            "shell",
            "-c",
            (
                "from django.contrib.auth import get_user_model; "
                f"get_user_model().objects.create_user({username!r}, password={password!r}, "
                f"is_staff={staff!r})"
            ),
        )

    def create_room(self, title: str, *, staff_only: bool = False) -> int:
        """Create a room; return its id."""
        out = self.manage(
            "shell",
            "-c",
            (
                "from chat.models import Room; "
                f"print(Room.objects.create(title={title!r}, staff_only={staff_only!r}).pk)"
            ),
        )
        return int(out.strip().splitlines()[-1])

    def create_token(self, username: str, name: str = "tests") -> str:
        """Create an API token for ``username`` in this server's database; return its plaintext."""
        out = self.manage(
            "shell",
            "-c",
            (
                "from django.contrib.auth import get_user_model; "
                "from api.services import token_create; "
                f"user = get_user_model().objects.get(username={username!r}); "
                f"print(token_create(user=user, name={name!r})[1])"
            ),
        )
        return out.strip().splitlines()[-1]

    def execute_sql(self, sql: str, params: tuple = ()) -> None:
        """Run one statement on the server's database behind its back: no signal, no notice.

        This is how a change made while the channel layer is down looks to
        the server's sockets. ``sql`` uses ``%s`` placeholders.
        """
        if "DATABASE_URL" in self.env:
            import psycopg

            with psycopg.connect(self.env["DATABASE_URL"], autocommit=True) as conn:
                conn.execute(sql, params)
            return
        import sqlite3

        with contextlib.closing(sqlite3.connect(Path(self.data_dir) / "db.sqlite3")) as conn:
            conn.execute(sql.replace("%s", "?"), params)
            conn.commit()

    def restart(self, timeout: float = 20) -> LiveServer:
        """Stop the server gracefully and start it again on the same port."""
        self.stop()
        return self.start(timeout)

    def start(self, timeout: float = 20) -> LiveServer:
        """Start uvicorn and wait until it answers /healthz."""
        log = open(self.log_path, "ab")  # noqa: SIM115 (closed with the process)
        self.process = subprocess.Popen(
            [part.format(port=self.port) for part in self.command],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"The server exited early:\n{self.log()}")
            if port_open("127.0.0.1", self.port):
                try:
                    with urllib.request.urlopen(self.url + "healthz", timeout=2) as response:
                        if response.status == 200:
                            return self
                except OSError:
                    pass
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"The server did not become healthy:\n{self.log()}")
            time.sleep(0.1)

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
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
        data = urllib.parse.urlencode(
            {"username": username, "password": password, "csrfmiddlewaretoken": token}
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


async def open_ws(server: LiveServer, user: str | None, *, origin: str | None = None, **options):
    """A real WebSocket to ``server``, logged in as ``user`` (password ``<user>-pw-1234``).

    ``options`` go to websockets' ``connect`` (e.g. ``max_queue``).
    """
    from websockets.asyncio.client import connect

    headers = {"Origin": origin or server.url.rstrip("/")}
    if user:
        headers["Cookie"] = await asyncio.to_thread(server.login_cookie, user, f"{user}-pw-1234")
    options.setdefault("max_size", 2**20)
    return await connect(server.ws_url, additional_headers=headers, **options)


async def next_frame(ws, predicate=lambda f: True, timeout: float = 5) -> dict:
    """The next frame from ``ws`` matching ``predicate``."""
    async with asyncio.timeout(timeout):
        while True:
            frame = json.loads(await ws.recv())
            if predicate(frame):
                return frame


def is_message(frame: dict) -> bool:
    """True for a stored chat message (type 0, with a seq)."""
    return frame.get("msg_type") == 0 and "seq" in frame


async def join(ws, room: int, **fields) -> dict:
    """Join ``room`` and return the reply (or the error)."""
    await ws.send(json.dumps({"command": "join", "room": room, **fields}))
    return await next_frame(ws, lambda f: "join" in f or "error" in f)


def health(server: LiveServer) -> int:
    """The status code of the server's /healthz."""
    try:
        with urllib.request.urlopen(server.url + "healthz", timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return 0  # not answering at all


async def wait_for_health(server: LiveServer, status: int, timeout: float = 10) -> None:
    """Wait until the server's /healthz answers ``status``."""
    async with asyncio.timeout(timeout):
        while await asyncio.to_thread(health, server) != status:  # noqa: ASYNC110
            await asyncio.sleep(0.2)
