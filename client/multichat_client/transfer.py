"""One streamed upload over HTTP/1.1 with ``Expect: 100-continue`` (standard library only).

The server refuses a body that is too large from its Content-Length alone,
before reading it, and then closes the connection: a client that had started
sending 25 MB would see a broken pipe instead of the answer. So the request's
headers go first, with ``Expect: 100-continue``, and the body only after the
server's ``100 Continue``; an answer that comes instead is the final one (the
413), read without sending the body. A server or proxy that says nothing
within CONTINUE_WAIT gets the body anyway (RFC 9110, 10.1.1), and if it then
closes while the body is going out, its answer is still read when it sent one.
"""

from __future__ import annotations

import http.client
import io
import select
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from typing import BinaryIO
from urllib.parse import urlsplit

CONTINUE_WAIT = 3.0  # seconds to wait for "100 Continue" before sending the body anyway


@dataclass(frozen=True)
class Answer:
    """The server's answer: status, reason phrase and body."""

    status: int
    reason: str
    body: bytes


class _Buffered:
    """A socket stand-in whose makefile() hands out a reader already started on."""

    def __init__(self, reader: BinaryIO) -> None:
        self.reader = reader

    def makefile(self, mode: str) -> BinaryIO:
        """The reader (HTTPResponse reads the answer from it)."""
        return self.reader


def post_streamed(
    url: str, headers: dict[str, str], chunks: Iterable[bytes], *, timeout: float
) -> Answer:
    """POST the body ``chunks`` (Content-Length must be in ``headers``); the server's answer.

    Raises OSError (ConnectionError, TimeoutError, ...) when there is no answer to read.
    """
    parts = urlsplit(url)
    connection: http.client.HTTPConnection
    if parts.scheme == "https":
        connection = http.client.HTTPSConnection(
            parts.netloc, timeout=timeout, context=ssl.create_default_context()
        )
    else:
        connection = http.client.HTTPConnection(parts.netloc, timeout=timeout)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        connection.putrequest("POST", path)
        for key, value in headers.items():
            connection.putheader(key, value)
        connection.putheader("Expect", "100-continue")
        connection.endheaders()
        early = _early_answer(connection)
        if early is not None:
            return early
        try:
            for chunk in chunks:
                connection.send(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server stopped reading: its answer may be waiting, read it below
        response = connection.getresponse()
        return Answer(response.status, response.reason, response.read())
    finally:
        connection.close()


def _early_answer(connection: http.client.HTTPConnection) -> Answer | None:
    """Wait for the server's first word: None after "100 Continue" (or silence), else its answer."""
    sock = connection.sock
    assert sock is not None
    pending = isinstance(sock, ssl.SSLSocket) and sock.pending() > 0
    if not pending and not select.select([sock], [], [], CONTINUE_WAIT)[0]:
        return None  # nothing said: send the body (a server that waits for it answers after)
    reader = sock.makefile("rb")
    status_line = reader.readline(65537)
    if status_line.split(b" ", 2)[1:2] == [b"100"]:
        while reader.readline(65537) not in (b"\r\n", b"\n", b""):
            pass  # the 100's own header lines, up to the blank line
        reader.close()  # nothing more is buffered: the server waits for the body now
        return None
    # Not a 100: the final answer, refused from the headers alone; the body is not sent.
    again = io.BufferedReader(_Prepended(status_line, reader))
    response = http.client.HTTPResponse(_Buffered(again), method="POST")  # type: ignore[arg-type]
    response.begin()
    return Answer(response.status, response.reason, response.read())


class _Prepended(io.RawIOBase):
    """A stream of ``first`` and then the rest of ``rest`` (a line read too early, put back)."""

    def __init__(self, first: bytes, rest: BinaryIO) -> None:
        self.first = first
        self.rest = rest

    def readable(self) -> bool:
        """Yes."""
        return True

    def readinto(self, buffer) -> int:
        """Fill ``buffer`` from ``first`` while it lasts, then from ``rest``."""
        if self.first:
            n = min(len(buffer), len(self.first))
            buffer[:n] = self.first[:n]
            self.first = self.first[n:]
            return n
        data = self.rest.read1(len(buffer))  # type: ignore[attr-defined]
        buffer[: len(data)] = data
        return len(data)
