"""Start uvicorn with the project's server flags: ``python -m config.server``.

The one place where the ASGI server is configured; scripts/run,
scripts/serve, the Dockerfile and the tests' live servers all start it this
way. Reads HOST, PORT, WEB_CONCURRENCY, CHAT_MAX_FRAME_BYTES,
FORWARDED_ALLOW_IPS, PROMETHEUS_MULTIPROC_DIR and SHUTDOWN_TIMEOUT from the
environment, and LOG_FORMAT and LOG_LEVEL for its logging (config/logs.py).

SIGTERM (or Ctrl+C) stops the process gracefully, within SHUTDOWN_TIMEOUT
seconds: it stops accepting, lets every socket finish the frames it has
read and closes it with 1012 (config/websocket.py), waits for HTTP requests
in flight, stops the hub's background tasks, and exits 0. What is still
running when the drain's share of the bound runs out is cancelled; a
watchdog ends the process (exit 1) if it is still alive at the bound.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import shutil
import socket
import tempfile
import threading
from pathlib import Path
from types import FrameType

import uvicorn
from uvicorn.supervisors import Multiprocess

from config.env import chat_max_frame_bytes, env_float, env_int, env_str
from config.logs import logging_config

log = logging.getLogger("uvicorn.error")

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"  # chat.metrics reads it in each worker
# What the bound leaves for stopping the hub after the sockets are drained.
HUB_STOP_SECONDS = 1.0


def prepare_metrics_dir(workers: int) -> None:
    """Give several workers one fresh, empty directory for their metrics (chat.metrics).

    prometheus_client's multiprocess mode: each worker writes its values to
    files there and a scrape of any worker sums them. The directory must be
    empty at start, or a previous run's counts would add in. Set by the
    operator: emptied of metric files. Unset with several workers: a
    temporary one, removed at exit. One worker, unset: nothing to share.
    """
    chosen = env_str(MULTIPROC_ENV)
    if chosen:
        path = Path(chosen)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink()
    elif workers > 1:
        made = tempfile.mkdtemp(prefix="multichat-metrics-")
        atexit.register(shutil.rmtree, made, ignore_errors=True)
        os.environ[MULTIPROC_ENV] = made  # inherited by the workers uvicorn starts


def shutdown_timeout() -> float:
    """SHUTDOWN_TIMEOUT: seconds from SIGTERM to the end of the process (default 10)."""
    return env_float("SHUTDOWN_TIMEOUT", 10.0, minimum=1.0)


class Server(uvicorn.Server):
    """uvicorn's server, ending with the hub stopped and exit 0 after a graceful SIGTERM.

    uvicorn re-raises a handled SIGTERM once it has shut down, so the
    process ends "killed by SIGTERM"; a drained process has done what was
    asked and exits 0 instead. A second signal still forces the exit.
    """

    def __init__(self, config: uvicorn.Config, *, timeout: float) -> None:
        super().__init__(config)
        self.timeout = timeout
        self.watchdog: threading.Timer | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """First signal: shut down gracefully, within the bound; a second one: at once."""
        if self.should_exit:
            self.force_exit = True
            return
        self.should_exit = True
        self.watchdog = threading.Timer(self.timeout, self._overdue)
        self.watchdog.daemon = True
        self.watchdog.start()

    def _overdue(self) -> None:
        log.error("Shutdown took longer than SHUTDOWN_TIMEOUT=%s s; exiting now", self.timeout)
        logging.shutdown()
        os._exit(1)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """uvicorn's shutdown (drain the sockets, bounded), then stop the hub."""
        await super().shutdown(sockets=sockets)
        from chat.hub import stop_running  # Django is set up once the app is loaded

        try:
            await asyncio.wait_for(stop_running(), HUB_STOP_SECONDS)
        except TimeoutError:
            log.warning("The hub did not stop within %s s", HUB_STOP_SECONDS)
        except Exception:
            log.exception("Stopping the hub failed")


def main() -> None:
    """Serve config.asgi:application until stopped."""
    forwarded = env_str("FORWARDED_ALLOW_IPS")
    workers = env_int("WEB_CONCURRENCY", 1, minimum=1)
    prepare_metrics_dir(workers)
    timeout = shutdown_timeout()
    config = uvicorn.Config(
        "config.asgi:application",
        host=env_str("HOST", "127.0.0.1"),
        port=env_int("PORT", 8000, minimum=1),
        workers=workers,
        loop="uvloop",
        http="httptools",
        # uvicorn's websockets-sansio protocol, plus the prebuilt-frame writer (chat/wire.py)
        # and the draining close on shutdown.
        ws="config.websocket:WireProtocol",
        ws_max_size=chat_max_frame_bytes(),
        # Chat frames are small and every member gets its own copy: compressing
        # each copy costs more CPU than it saves bytes (docs/performance.md).
        ws_per_message_deflate=False,
        lifespan="off",
        access_log=False,
        # The project's own logging (LOG_FORMAT, LOG_LEVEL), not uvicorn's plain formatter.
        log_config=logging_config(),
        proxy_headers=bool(forwarded),
        forwarded_allow_ips=forwarded or None,
        # The drain's share of the bound; the rest is for stopping the hub.
        timeout_graceful_shutdown=max(0.5, timeout - HUB_STOP_SECONDS - 0.5),  # type: ignore[arg-type]
    )
    if config.workers > 1:
        # uvicorn's supervisor runs its own Server in each worker: the sockets drain
        # the same (the protocol), and each worker ends by the signal it was sent.
        Multiprocess(config, sockets=[config.bind_socket()]).run()
        return
    Server(config, timeout=timeout).run()


if __name__ == "__main__":
    main()
