"""The pool's checkout check for PostgreSQL, bounded so that a silent server fails it fast.

psycopg_pool's own ``check_connection`` waits for the server's answer with
no time limit: a connection whose server vanished without a word (a network
cut, a paused VM) would hold the request for as long as TCP takes to give
up. This one sends the same empty query through libpq's asynchronous calls
and waits for the answer with a deadline, in the calling thread (a timer
thread per checkout cost more than the rest of a post); a late answer closes
the connection, so the pool discards it and tries another or a fresh one.
"""

from __future__ import annotations

import select
import time
from typing import Any

import psycopg
from psycopg import pq

_FINE = {pq.ExecStatus.EMPTY_QUERY, pq.ExecStatus.COMMAND_OK, pq.ExecStatus.TUPLES_OK}


class BoundedCheck:
    """``check`` for psycopg_pool: an empty query answered within ``timeout`` seconds."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout

    def __call__(self, conn: psycopg.Connection[Any]) -> None:
        """Raise (and close the connection) unless the server answers in time."""
        pgconn = conn.pgconn
        if pgconn.status != pq.ConnStatus.OK:
            raise ConnectionError("The database connection is closed.")
        deadline = time.monotonic() + self.timeout
        pgconn.send_query(b"")
        while True:
            pgconn.consume_input()
            if not pgconn.is_busy():
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([pgconn.socket], [], [], remaining)[0]:
                conn.close()
                raise TimeoutError(f"The database did not answer a check within {self.timeout} s.")
        failed = None
        while (result := pgconn.get_result()) is not None:
            if result.status not in _FINE:
                failed = result.error_message.decode(errors="replace")
        if failed is not None:
            raise ConnectionError(f"The database check failed: {failed}")
