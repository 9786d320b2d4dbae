"""Start uvicorn with the project's server flags: ``python -m config.server``.

The one place where the ASGI server is configured; scripts/run,
scripts/serve, the Dockerfile and the tests' live servers all start it this
way. Reads HOST, PORT, WEB_CONCURRENCY, CHAT_MAX_FRAME_BYTES and
FORWARDED_ALLOW_IPS from the environment, and
LOG_FORMAT and LOG_LEVEL for its logging (config/logs.py).
"""

import uvicorn

from config.env import chat_max_frame_bytes, env_int, env_str
from config.logs import logging_config


def main() -> None:
    """Serve config.asgi:application until stopped."""
    forwarded = env_str("FORWARDED_ALLOW_IPS")
    uvicorn.run(
        "config.asgi:application",
        host=env_str("HOST", "127.0.0.1"),
        port=env_int("PORT", 8000, minimum=1),
        workers=env_int("WEB_CONCURRENCY", 1, minimum=1),
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
