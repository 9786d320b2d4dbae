"""What an upload is: its name made safe, and its type read from its bytes (never its name).

Known signatures by their bytes (puremagic); a zip is looked into (OpenDocument by its
``mimetype`` member, Office Open XML by its parts); valid UTF-8 with no NUL is
``text/plain`` whatever it holds, so HTML, SVG and XML are plain text and never
rendered; anything else is ``application/octet-stream``.
"""

from __future__ import annotations

import codecs
import unicodedata
import zipfile
from typing import IO

import puremagic

from chat import conf

# Images the browser may show in place (Content-Disposition: inline); every other type,
# SVG and HTML above all, is only ever a download, so no upload runs in a reader's page.
INLINE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
NAME_MAX = 255  # characters of a file's name as shown
STORED_NAME_MAX_BYTES = 200  # bytes of the name in its storage name (file systems allow 255)

# puremagic's names for types that are better known by another (the IANA one).
_ALIASES = {
    "application/x-gzip": "application/gzip",
    "audio/mp3": "audio/mpeg",
    "audio/x-mpeg": "audio/mpeg",
    "application/x-ogg": "audio/ogg",
    "video/x-webm": "video/webm",
}
_OOXML = {
    "word/": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xl/": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "ppt/": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
}


def safe_name(name: str) -> str:
    """The uploaded name made safe to show and store: no path, no control characters, short.

    "thumb" alone would have the thumbnail's URL, so it becomes "thumb_".
    """
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip()
    if len(name) > NAME_MAX:
        _, dot, ext = name.rpartition(".")
        ext = ext if dot and 0 < len(ext) <= 16 else ""
        name = (name[: NAME_MAX - len(ext) - 1] + "." + ext) if ext else name[:NAME_MAX]
    if name in ("", ".", ".."):
        return "file"
    return "thumb_" if name == "thumb" else name


def stored_name(name: str) -> str:
    """``name`` cut to STORED_NAME_MAX_BYTES of UTF-8 (keeping its extension) for storage.

    Never the thumbnail's name: a storage that overwrites (S3) would lose one of the two.
    """
    if name == "thumb.webp":
        return "thumb_.webp"
    if len(name.encode()) <= STORED_NAME_MAX_BYTES:
        return name
    stem, dot, ext = name.rpartition(".")
    ext = "." + ext if dot and len(ext.encode()) <= 16 else ""
    stem = stem if ext else name
    room = STORED_NAME_MAX_BYTES - len(ext.encode())
    return stem.encode()[:room].decode(errors="ignore") + ext


def type_allowed(content_type: str) -> bool:
    """True if CHAT_UPLOAD_ALLOWED_TYPES lets ``content_type`` in ("family.*" lets in a family)."""
    for allowed in conf.CHAT_UPLOAD_ALLOWED_TYPES:
        if allowed.endswith("*"):
            if content_type.startswith(allowed[:-1]):
                return True
        elif content_type == allowed:
            return True
    return False


def _is_text(file: IO[bytes]) -> bool:
    """True if the whole file is UTF-8 with no NUL character: plain text."""
    file.seek(0)
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        while chunk := file.read(64 * 1024):
            if b"\x00" in chunk:
                return False
            decoder.decode(chunk)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def _zip_type(file: IO[bytes]) -> str:
    """A zip's type: an OpenDocument or Office Open XML file by its members, else a plain zip.

    ODF names itself in its ``mimetype`` member; OOXML by its parts (``word/``,
    ``xl/``, ``ppt/`` beside ``[Content_Types].xml``). A broken zip is unknown.
    """
    file.seek(0)
    try:
        with zipfile.ZipFile(file) as archive:
            names = archive.namelist()
            if "mimetype" in names:
                with archive.open("mimetype") as member:
                    declared = member.read(100).decode("ascii", "replace").strip()
                if declared.startswith("application/vnd.oasis.opendocument."):
                    return declared
            if "[Content_Types].xml" in names:
                for prefix, content_type in _OOXML.items():
                    if any(n.startswith(prefix) for n in names):
                        return content_type
    except (zipfile.BadZipFile, OSError, EOFError):
        return "application/octet-stream"
    return "application/zip"


def _textual(content_type: str) -> bool:
    """A type a browser could run as a page or script (HTML, SVG, XML, ...): never trusted."""
    return (
        content_type.startswith("text/")
        or "xml" in content_type
        or "html" in content_type
        or "script" in content_type
        or "json" in content_type
    )


def sniff(file: IO[bytes]) -> str:
    """The content type of ``file`` read from its bytes (puremagic), whatever it is named.

    Text (valid UTF-8 with no NUL) is text/plain, whatever markup it holds: an
    HTML or SVG file is plain text, shown as such, never rendered. A zip is
    looked into (``_zip_type``). Unknown bytes are application/octet-stream.
    """
    file.seek(0)
    try:
        matches = puremagic.magic_stream(file)
    except (puremagic.PureError, ValueError):
        matches = []
    for match in matches:
        found = str(_ALIASES.get(match.mime_type, match.mime_type) or "")
        if not found or _textual(found):
            continue
        if match.byte_match.startswith(b"PK\x03\x04") or found == "application/zip":
            return _zip_type(file)
        return found
    return "text/plain" if _is_text(file) else "application/octet-stream"
