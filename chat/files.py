"""Attachments: uploads, the checks they pass, their storage, and who may read them.

An upload (``upload``) is sniffed (its type is read from its bytes, never taken
from the browser or the name), checked against the size, the daily quota and
the allowed types, and stored through Django's storage API under
``files/<id[:2]>/<id>/<name>``; an image is verified by Pillow, loses its EXIF
GPS position and gets a WebP thumbnail. It belongs to its uploader until a post
claims it (``claim``, inside the post's transaction); the post then carries its
descriptors (Message.files), so frames need no join. A file is served only to
who may enter the post's room (``readable``), or to its uploader before it is posted.
"""

from __future__ import annotations

import codecs
import functools
import io
import json
import logging
import os
import posixpath
import secrets
import unicodedata
import warnings
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import IO, Any
from urllib.parse import quote

import puremagic
from django.core.files.base import ContentFile, File
from django.core.files.storage import InvalidStorageError, Storage, storages
from django.core.files.uploadedfile import UploadedFile
from django.core.signals import setting_changed
from django.db import connection, transaction
from django.dispatch import receiver
from django.urls import get_script_prefix, reverse
from django.utils import timezone
from django.utils.http import RFC3986_SUBDELIMS
from PIL import Image, ImageOps, JpegImagePlugin

from chat import conf, permissions, protocol
from chat.errors import ChatError, ErrorCode
from chat.models import Attachment, Message
from chat.permissions import Account

log = logging.getLogger(__name__)

# Images the browser may show in place (Content-Disposition: inline); every other type,
# SVG and HTML above all, is only ever a download, so no upload runs in a reader's page.
INLINE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
THUMB_SIZE = 480  # the longest side of a thumbnail, in pixels
THUMB_TYPE = "image/webp"
NAME_MAX = 255  # characters of a file's name as shown
STORED_NAME_MAX_BYTES = 200  # bytes of the name in its storage name (file systems allow 255)
GPS_IFD = 0x8825  # the EXIF tag that points to the GPS position

# puremagic's names for types that are better known by another (the IANA one).
_ALIASES = {
    "application/x-gzip": "application/gzip",
    "audio/mp3": "audio/mpeg",
    "audio/x-mpeg": "audio/mpeg",
    "application/x-ogg": "audio/ogg",
    "video/x-webm": "video/webm",
}
# What Pillow calls each image type; a phone's JPEG is often MPO (a JPEG with more images).
_PILLOW_FORMATS = {
    "image/png": {"PNG"},
    "image/jpeg": {"JPEG", "MPO"},
    "image/gif": {"GIF"},
    "image/webp": {"WEBP"},
}
_OOXML = {
    "word/": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xl/": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "ppt/": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
}


def storage() -> Storage:
    """The attachments' storage: STORAGES[CHAT_FILES_STORAGE], else the project's default."""
    try:
        return storages[conf.CHAT_FILES_STORAGE]
    except InvalidStorageError:
        return storages["default"]


# --- names and types --------------------------------------------------------------------


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


def _stored_name(name: str) -> str:
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


# --- images -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Image:
    width: int
    height: int
    thumb: bytes
    cleaned: bytes | None  # the image without its GPS position; None: unchanged


def _image(file: IO[bytes], content_type: str) -> _Image:
    """Verify an image, measure it (as shown: after its EXIF orientation), thumbnail it,
    and take its EXIF GPS position out (every other EXIF tag stays)."""
    bad = ChatError(ErrorCode.BAD_REQUEST, f"The file is not a valid {content_type} image.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            file.seek(0)
            with Image.open(file) as probe:
                _check_pixels(probe.width, probe.height)
                if probe.format not in _PILLOW_FORMATS[content_type]:
                    raise bad
                probe.verify()
            file.seek(0)
            with Image.open(file) as image:
                image.load()
                shown = ImageOps.exif_transpose(image)
                thumb = shown.copy()
                thumb.thumbnail((THUMB_SIZE, THUMB_SIZE))
                thumb = thumb.convert("RGBA" if thumb.has_transparency_data else "RGB")
                out = io.BytesIO()
                thumb.save(out, "WEBP", quality=80)
                return _Image(
                    width=shown.width,
                    height=shown.height,
                    thumb=out.getvalue(),
                    cleaned=_without_gps(image),
                )
    except Image.DecompressionBombError:  # Pillow's own refusal, at twice the limit
        raise ChatError(
            ErrorCode.FILE_TOO_LARGE,
            f"The image has too many pixels; the limit is {Image.MAX_IMAGE_PIXELS}.",
        ) from None
    except ChatError:
        raise
    except Exception:  # Pillow's many ways of saying the bytes are not a sound image
        log.info("Refused an image upload that does not decode", exc_info=True)
        raise bad from None


def _check_pixels(width: int, height: int) -> None:
    """Refuse an image over Pillow's MAX_IMAGE_PIXELS: a decompression bomb."""
    limit = Image.MAX_IMAGE_PIXELS
    if limit and width * height > limit:
        raise ChatError(
            ErrorCode.FILE_TOO_LARGE,
            f"The image has {width * height} pixels; the limit is {limit}.",
        )


def _without_gps(image: Image.Image) -> bytes | None:
    """The image saved again without its EXIF GPS position; None if it has none.

    A JPEG is saved with its own quantization tables and subsampling
    (``quality="keep"``), so it loses as little as a re-encode can. An MPO (a
    phone's JPEG carrying more images, each with EXIF of its own) is always
    saved again as its first image alone, a plain JPEG.
    """
    exif = image.getexif()
    if GPS_IFD not in exif and image.format != "MPO":
        return None
    exif.get_ifd(0x8769)  # the Exif sub-IFD, loaded so it is written back
    exif.pop(GPS_IFD, None)
    options: dict[str, Any] = {"exif": exif.tobytes()}
    if image.info.get("icc_profile"):
        options["icc_profile"] = image.info["icc_profile"]
    kind = "JPEG" if image.format == "MPO" else image.format
    if image.format == "MPO":  # "keep" is for JPEG alone: the same tables, given explicitly
        sampling = JpegImagePlugin.get_sampling(image)
        options.update(qtables=getattr(image, "quantization", None), subsampling=sampling)
    elif kind == "JPEG":
        options.update(quality="keep", subsampling="keep")
    elif kind == "WEBP":
        options.update(lossless=True)
    if kind != "JPEG" and getattr(image, "n_frames", 1) > 1:
        options["save_all"] = True
    out = io.BytesIO()
    image.save(out, kind, **options)
    return out.getvalue()


# --- upload -----------------------------------------------------------------------------


def _check_quota(user: Account, size: int, now: datetime) -> None:
    """Refuse an upload that takes the user over CHAT_UPLOAD_QUOTA_BYTES_PER_DAY in 24 hours."""
    quota = conf.CHAT_UPLOAD_QUOTA_BYTES_PER_DAY
    since = now - timedelta(days=1)
    recent = list(
        Attachment.objects.filter(uploader=user, created__gt=since)
        .order_by("created")
        .values_list("created", "size")
    )
    used = sum(s for _, s in recent)
    if used + size <= quota:
        return
    # When enough of the last day's uploads have aged out for this one to fit.
    wait = 86400.0
    freed, need = 0, used + size - quota
    for created, s in recent:
        freed += s
        if freed >= need:
            wait = max(1.0, (created + timedelta(days=1) - now).total_seconds())
            break
    raise ChatError(
        ErrorCode.UPLOAD_QUOTA_EXCEEDED,
        f"You uploaded {used} bytes in the last 24 hours; with this file's {size} that is "
        f"over the limit of {quota}.",
        retry_after=wait,
    )


def upload(*, user: Account, file: UploadedFile[Any]) -> Attachment:
    """Check and store an uploaded file; it is the uploader's until a post claims it."""
    if not permissions.is_chat_user(user):
        raise ChatError(ErrorCode.USER_HAS_TO_LOGIN, "Log in with an active account to upload.")
    size = int(file.size or 0)
    if size == 0:
        raise ChatError(ErrorCode.BAD_REQUEST, "The file is empty.")
    limit = conf.CHAT_UPLOAD_MAX_BYTES
    if size > limit:
        raise ChatError(
            ErrorCode.FILE_TOO_LARGE, f"The file has {size} bytes; the limit is {limit}."
        )
    now = timezone.now()
    _check_quota(user, size, now)
    data: IO[bytes] = file.file  # type: ignore[assignment]  # an open binary file
    content_type = sniff(data)
    if not type_allowed(content_type):
        raise ChatError(
            ErrorCode.FILE_TYPE_REFUSED,
            f"Files of type {content_type} (read from its content) are not accepted here.",
        )
    name = safe_name(file.name or "")
    key = secrets.token_urlsafe(16)
    folder = f"files/{key[:2]}/{key}/"
    image = _image(data, content_type) if content_type in INLINE_TYPES else None
    store = storage()
    data.seek(0)
    body: File[Any] = (
        File(data) if image is None or image.cleaned is None else (ContentFile(image.cleaned))
    )
    stored = store.save(folder + _stored_name(name), body)
    thumb = ""
    try:
        if image is not None:
            thumb = store.save(folder + "thumb.webp", ContentFile(image.thumb))
        attachment = Attachment.objects.create(
            key=key,
            uploader=user,
            name=name,
            content_type=content_type,
            size=size if image is None or image.cleaned is None else len(image.cleaned),
            width=None if image is None else image.width,
            height=None if image is None else image.height,
            storage_name=stored,
            thumb_name=thumb,
            created=now,
        )
        # Again, with this upload counted: uploads that ran side by side, each under the
        # quota when it began, may not together go over it (the later ones are refused).
        try:
            _check_quota(user, 0, now)
        except ChatError:
            attachment.delete()
            raise
    except BaseException:
        remove_stored([stored, thumb])
        raise
    return attachment


# --- posting ----------------------------------------------------------------------------


def check_keys(keys: Sequence[str]) -> None:
    """Refuse a post's list of files before anything is stored: too many, or one twice."""
    most = conf.CHAT_UPLOAD_MAX_FILES
    if len(keys) > most:
        raise ChatError(ErrorCode.BAD_REQUEST, f"A post may carry {most} files at most.")
    if len(set(keys)) != len(keys):
        raise ChatError(ErrorCode.BAD_REQUEST, "`files` lists a file twice.")


def claim(*, user: Account, keys: Sequence[str]) -> list[Attachment]:
    """The user's unposted uploads ``keys``, locked, in upload order; FILE_INVALID if any is not.

    Inside the post's transaction: the post then marks them posted (``attach``).
    """
    found = Attachment.objects.filter(
        key__in=list(keys), uploader=user, message__isnull=True, posted__isnull=True
    ).order_by("created", "id")
    if connection.features.has_select_for_update:
        found = found.select_for_update()
    claimed = list(found)
    if len(claimed) != len(keys):
        missing = sorted(set(keys) - {a.key for a in claimed})
        raise ChatError(
            ErrorCode.FILE_INVALID,
            f"No upload of yours waits to be posted as {', '.join(missing)[:200]}; "
            "upload it again.",
        )
    return claimed


def attach(claimed: list[Attachment], message: Message) -> None:
    """Mark the claimed uploads as posted with ``message`` (inside the post's transaction)."""
    ids = [a.pk for a in claimed]
    done = Attachment.objects.filter(pk__in=ids, message__isnull=True, posted__isnull=True).update(
        message=message, posted=message.created
    )
    if done != len(ids):  # posted by a concurrent post since the claim (no row lock here)
        raise ChatError(ErrorCode.FILE_INVALID, "A file was posted elsewhere meanwhile.")


def descriptors(attachments: Iterable[Attachment]) -> str:
    """The JSON stored in Message.files for these attachments ("" when none)."""
    entries = []
    for a in attachments:
        entry: dict[str, Any] = {"id": a.key, "name": a.name, "type": a.content_type}
        entry["size"] = a.size
        if a.thumb_name:
            entry.update(width=a.width, height=a.height)
        entries.append(entry)
    return json.dumps(entries, separators=(",", ":"), ensure_ascii=False) if entries else ""


@functools.lru_cache(maxsize=16)
def _files_base(script_prefix: str) -> str:
    """Where the files' URLs start (e.g. "/files/", "/chat/files/"), under a script prefix."""
    return reverse("chat-file-thumb", kwargs={"key": "-"}).removesuffix("-/thumb")


@receiver(setting_changed)
def _urls_changed(*, setting: str, **kwargs: Any) -> None:
    """Another URLconf (a test's override_settings): the files' base is looked up again."""
    if setting == "ROOT_URLCONF":
        _files_base.cache_clear()


# The characters Django's reverse() leaves unquoted in a path (django.urls.resolvers).
_URL_SAFE = RFC3986_SUBDELIMS + "/~:@"


def file_info(entry: dict[str, Any]) -> protocol.FileInfo:
    """A file's descriptor (one entry of Message.files) as the frame's FileInfo, with URLs.

    The URLs are what reverse("chat-file"...) gives, built from a cached base:
    reverse() itself costs ~50 µs, and a history page may hold many files.
    """
    key, name = entry["id"], entry["name"]
    base = _files_base(get_script_prefix()) + key + "/"
    return protocol.FileInfo(
        id=key,
        name=name,
        type=entry["type"],
        size=entry["size"],
        url=base + quote(name, safe=_URL_SAFE),
        thumb=base + "thumb" if "width" in entry else None,
        width=entry.get("width"),
        height=entry.get("height"),
    )


def file_infos(files: str) -> list[protocol.FileInfo]:
    """The FileInfo list of a post's stored ``files`` JSON (empty for "")."""
    return [file_info(entry) for entry in json.loads(files)] if files else []


def attachment_info(attachment: Attachment) -> protocol.FileInfo:
    """One upload's FileInfo (the answer to the upload)."""
    return file_infos(descriptors([attachment]))[0]


# --- deleting ---------------------------------------------------------------------------


def remove_stored(names: Iterable[str]) -> None:
    """Delete these storage names (a failure is logged: purge_files finds what stays).

    On a local file system their emptied folders go too.
    """
    store = storage()
    folders = set()
    for name in names:
        if not name:
            continue
        try:
            store.delete(name)
        except Exception:
            log.exception("Could not delete the stored file %s", name)
        folders.add(posixpath.dirname(name))
    for folder in sorted(folders, reverse=True):
        _remove_empty_folders(store, folder)


def _remove_empty_folders(store: Storage, folder: str) -> None:
    """Remove ``folder`` and its parent up to ``files/`` while empty (local storage only)."""
    while folder.startswith("files/"):
        try:
            os.rmdir(store.path(folder))
        except (NotImplementedError, OSError):
            return
        folder = posixpath.dirname(folder)


def delete_attachments(attachments: Iterable[Attachment]) -> int:
    """Delete these attachments' rows now and their stored files after the commit."""
    rows = list(attachments)
    names = [n for a in rows for n in (a.storage_name, a.thumb_name) if n]
    Attachment.objects.filter(pk__in=[a.pk for a in rows]).delete()
    if names:
        transaction.on_commit(lambda: remove_stored(names))
    return len(rows)


def attachments_remove(attachments: Iterable[Attachment]) -> int:
    """Delete attachments (the admin's delete), their stored files after the commit, and take
    them out of their posts' ``files``, so history and every later frame no longer list them."""
    rows = list(attachments)
    with transaction.atomic():
        removed = delete_attachments(rows)
        for message_id in {a.message_id for a in rows if a.message_id is not None}:
            left = Attachment.objects.filter(message_id=message_id).order_by("created", "id")
            Message.objects.filter(pk=message_id).update(files=descriptors(left))
    return removed


@dataclass(frozen=True, slots=True)
class Purged:
    """What ``files_purge`` removed."""

    unposted: int
    unattached: int
    stray: int


STRAY_GRACE = timedelta(hours=1)  # a stored file no row names yet may be an upload under way


def files_purge(*, now: datetime | None = None) -> Purged:
    """Remove uploads never posted within CHAT_UPLOAD_ORPHAN_HOURS, attachments whose post is
    gone, and stored files under ``files/`` that no attachment names."""
    now = now or timezone.now()
    cutoff = now - timedelta(hours=conf.CHAT_UPLOAD_ORPHAN_HOURS)
    with transaction.atomic():
        unposted = delete_attachments(
            Attachment.objects.filter(message__isnull=True, posted__isnull=True, created__lt=cutoff)
        )
        unattached = delete_attachments(
            Attachment.objects.filter(message__isnull=True, posted__isnull=False)
        )
    return Purged(unposted=unposted, unattached=unattached, stray=_purge_stray(now))


def _purge_stray(now: datetime) -> int:
    """Delete the stored files under ``files/<xx>/<key>/`` that no attachment row names."""
    store = storage()
    removed = 0
    try:
        prefixes, _ = store.listdir("files")
    except FileNotFoundError:
        return 0
    for prefix in prefixes:
        folder = f"files/{prefix}"
        keys, loose = store.listdir(folder)
        stray = [f"{folder}/{name}" for name in loose]
        named: dict[str, set[str]] = {}
        rows = Attachment.objects.filter(key__in=keys)
        for key, stored, thumb in rows.values_list("key", "storage_name", "thumb_name"):
            named[key] = {stored, thumb}
        for key in keys:
            _, held = store.listdir(f"{folder}/{key}")
            known = named.get(key, set())
            stray += [f"{folder}/{key}/{n}" for n in held if f"{folder}/{key}/{n}" not in known]
        old = [n for n in stray if now - store.get_modified_time(n) > STRAY_GRACE]
        remove_stored(old)
        removed += len(old)
    return removed


# --- reading ----------------------------------------------------------------------------


def readable(*, user: permissions.User, key: str) -> Attachment | None:
    """The attachment ``key`` if ``user`` may read it, else None (the caller answers 404).

    Posted: to whoever may enter the post's room (chat's one access rule), while
    the post is not deleted. Not yet posted: to its uploader alone.
    """
    if not permissions.is_chat_user(user) or len(key) > 32:
        return None
    found = Attachment.objects.select_related("message__room").filter(key=key).first()
    if found is None:
        return None
    if found.message is None:
        ok = found.posted is None and found.uploader_id == user.pk
        return found if ok else None
    if found.message.deleted or not permissions.can_enter(user, found.message.room):
        return None
    return found


def disposition(content_type: str, name: str) -> str:
    """Content-Disposition: ``inline`` for the four image types alone, else a download."""
    kind = "inline" if content_type in INLINE_TYPES else "attachment"
    return f"{kind}; filename*=UTF-8''{quote(name, safe='')}"


def signed_url(store: Storage, name: str, *, content_type: str, disposition: str) -> str:
    """A storage without local paths (S3): a URL to ``name`` that expires, answered with
    the same Content-Type and Content-Disposition as the app would send."""
    url: str = store.url(  # type: ignore[call-arg]  # S3Storage.url's own parameters
        name,
        parameters={
            "ResponseContentDisposition": disposition,
            "ResponseContentType": content_type,
            "ResponseCacheControl": "private, max-age=3600",
        },
        expire=conf.CHAT_FILES_URL_EXPIRES_SECONDS,
    )
    return url
