"""Start uvicorn with the project's server flags: ``python -m config.server``.

The one place where the ASGI server is configured; scripts/run,
scripts/serve, the Dockerfile and the tests' live servers all start it this
way. Reads HOST, PORT, WEB_CONCURRENCY, CHAT_MAX_FRAME_BYTES,
FORWARDED_ALLOW_IPS and PROMETHEUS_MULTIPROC_DIR from the environment, and
LOG_FORMAT and LOG_LEVEL for its logging (config/logs.py).
"""

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import uvicorn

from config.env import chat_max_frame_bytes, env_int, env_str
from config.logs import logging_config

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"  # chat.metrics reads it in each worker


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


def main() -> None:
    """Serve config.asgi:application until stopped."""
    forwarded = env_str("FORWARDED_ALLOW_IPS")
    workers = env_int("WEB_CONCURRENCY", 1, minimum=1)
    prepare_metrics_dir(workers)
    uvicorn.run(
        "config.asgi:application",
        host=env_str("HOST", "127.0.0.1"),
        port=env_int("PORT", 8000, minimum=1),
        workers=workers,
        loop="uvloop",
        http="httptools",
        # uvicorn's websockets-sansio protocol, plus the prebuilt-frame writer (chat/wire.py).
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
    )


if __name__ == "__main__":
    main()
