"""Attachments: the FileInfo a message frame carries, and the multipart body of an upload.

Standard library only, like the REST client: the body is streamed from disk
(``multipart_body`` yields it in pieces and says its length up front), so a
25 MB file is never held in memory whole.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

CHUNK = 64 * 1024


@dataclass(frozen=True)
class FileInfo:
    """A file attached to a post, as the server describes it.

    ``type`` is the type the server found in the bytes (not the one the name
    suggests); ``url`` and ``thumb`` are the server's paths (``RestClient.download``
    fetches them); ``thumb``, ``width`` and ``height`` are set for images only.
    """

    id: str
    name: str
    type: str
    size: int
    url: str
    thumb: str | None = None
    width: int | None = None
    height: int | None = None

    @classmethod
    def from_frame(cls, entry: dict[str, Any]) -> FileInfo:
        """The FileInfo in a frame's ``files`` list (or an upload's answer)."""
        return cls(
            id=entry["id"],
            name=entry["name"],
            type=entry["type"],
            size=entry["size"],
            url=entry["url"],
            thumb=entry.get("thumb"),
            width=entry.get("width"),
            height=entry.get("height"),
        )

    def to_frame(self) -> dict[str, Any]:
        """The FileInfo as the server's JSON (a dict ready for json.dumps)."""
        frame: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "type": self.type,
            "size": self.size,
            "url": self.url,
        }
        for key in ("thumb", "width", "height"):
            if getattr(self, key) is not None:
                frame[key] = getattr(self, key)
        return frame


def files_of(frame: dict[str, Any]) -> tuple[FileInfo, ...]:
    """The files of a message frame (none when it has no ``files``)."""
    return tuple(FileInfo.from_frame(entry) for entry in frame.get("files") or ())


def human_size(size: int) -> str:
    """``812 B``, ``12.1 kB``, ``3.4 MB`` (powers of 1000, as file managers show them)."""
    if size < 1000:
        return f"{size} B"
    for unit in ("kB", "MB", "GB"):
        size_f = size / 1000
        if size_f < 1000 or unit == "GB":
            return f"{size_f:.1f} {unit}"
        size = round(size_f)
    raise AssertionError("unreachable")


def _quoted(name: str) -> str:
    """A file name for the Content-Disposition of a form part (quotes and line breaks escaped).

    The way browsers write it (the WHATWG form encoding): ``"`` as %22, CR and LF as %0D, %0A.
    """
    return name.replace("\r", "%0D").replace("\n", "%0A").replace('"', "%22")


@dataclass(frozen=True)
class MultipartBody:
    """A multipart/form-data body with one part, ``file``: its headers and pieces, streamed."""

    content_type: str
    length: int
    head: bytes
    tail: bytes
    source: Path | BinaryIO

    def chunks(self) -> Iterator[bytes]:
        """The body, a piece at a time (the file read in CHUNK-sized blocks)."""
        yield self.head
        if isinstance(self.source, Path):
            with self.source.open("rb") as stream:
                yield from _blocks(stream)
        else:
            yield from _blocks(self.source)
        yield self.tail


def _blocks(stream: BinaryIO) -> Iterator[bytes]:
    while block := stream.read(CHUNK):
        yield block


def multipart_body(
    source: str | os.PathLike[str] | BinaryIO, *, name: str | None = None
) -> MultipartBody:
    """The upload body of a file on disk (or an open binary file: give ``name`` and it must
    be seekable, to know its size). Raises OSError when the file cannot be read."""
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        with path.open("rb"):  # fail here, with the OS's reason, not halfway through the request
            pass
        size = path.stat().st_size
        filename = name or path.name
        body_source: Path | BinaryIO = path
    else:
        start = source.tell()
        size = source.seek(0, os.SEEK_END) - start
        source.seek(start)
        filename = name or Path(getattr(source, "name", "upload")).name
        body_source = source
    boundary = f"multichat-{secrets.token_hex(16)}"
    head = (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="file"; filename="{_quoted(filename)}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    return MultipartBody(
        content_type=f"multipart/form-data; boundary={boundary}",
        length=len(head) + size + len(tail),
        head=head,
        tail=tail,
        source=body_source,
    )
