"""The pool's checkout check for PostgreSQL, bounded so that a silent server fails it fast.

psycopg_pool's own ``check_connection`` waits for the server's answer with
no time limit: a connection whose server vanished without a word (a network
cut, a paused VM) would hold the request for as long as TCP takes to give
up. This one shuts the socket down when the answer is late, so the pool
discards the connection and tries another or a fresh one.
"""

from __future__ import annotations

import os
import socket
import threading
import time

from psycopg_pool import ConnectionPool

# A connection taken from the pool this recently was in use moments ago: checking
# it again would cost a round trip and a timer thread on every query of a busy
# process (the benchmark's post path went from ~1.7 to ~2.3 ms of CPU per post).
FRESH_SECONDS = 1.0


class BoundedCheck:
    """``check`` for psycopg_pool: ConnectionPool.check_connection within ``timeout`` seconds.

    A connection checked out less than FRESH_SECONDS ago is not checked again.
    """

    def __init__(self, timeout: float):
        self.timeout = timeout

    def __call__(self, conn) -> None:
        """Raise (and leave the connection broken) unless the server answers in time."""
        now = time.monotonic()
        last = getattr(conn, "_multichat_checked_out", None)
        conn._multichat_checked_out = now
        if last is not None and now - last < FRESH_SECONDS:
            return
        sock = socket.socket(fileno=os.dup(conn.fileno()))
        lock = threading.Lock()
        state = {"done": False, "late": False}

        def give_up() -> None:
            with lock:
                if not state["done"]:
                    state["late"] = True
                    # Wakes the waiting read with an end of file: libpq reports a lost connection.
                    sock.shutdown(socket.SHUT_RDWR)

        timer = threading.Timer(self.timeout, give_up)
        timer.daemon = True
        timer.start()
        try:
            ConnectionPool.check_connection(conn)
        finally:
            with lock:
                state["done"] = True
            timer.cancel()
            sock.close()  # only the duplicate: the connection keeps its own descriptor
        if state["late"]:
            raise TimeoutError(f"The database did not answer a check within {self.timeout} s.")
