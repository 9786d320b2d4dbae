"""Test and benchmark infrastructure: real servers, data factories, a breakable TCP link.

- testkit.servers: free ports, a real Redis (found or started), throwaway PostgreSQL databases.
- testkit.live: LiveServer (a real uvicorn process) and real-WebSocket helpers.
- testkit.proxy: TcpProxy, a loopback link that tests cut and restore.
- testkit.netns: server hosts in network namespaces, with links that tests cut (root only).
- testkit.factories: users, sessions, rooms, tokens and messages (ORM code).
- testkit.sockets: Socket, an in-process WebSocket through the ASGI app.
- testkit.browser: where Debian's Chromium is, and installing it.
- ``manage.py testkit``: the factories against a live server's database; the app is
  installed only by config.test_settings and testkit.settings, never in production.

chat/tests/conftest.py turns these into pytest fixtures; bench/ and scripts/testrun.py
import them. None of it is copied into the server's image (deploy/Dockerfile).
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # the repository
