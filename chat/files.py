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

import functools
import json
import logging
import os
import posixpath
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import IO, Any
from urllib.parse import quote

from django.core.files.base import ContentFile, File
from django.core.files.storage import InvalidStorageError, Storage, storages
from django.core.files.uploadedfile import UploadedFile
from django.core.signals import setting_changed
from django.db import connection, transaction
from django.dispatch import receiver
from django.urls import get_script_prefix, reverse
from django.utils import timezone
from django.utils.http import RFC3986_SUBDELIMS

from chat import conf, images, permissions, protocol
from chat.errors import ChatError, ErrorCode
from chat.filetypes import INLINE_TYPES, safe_name, sniff, stored_name, type_allowed
from chat.models import Attachment, Message
from chat.permissions import Account

log = logging.getLogger(__name__)


def storage() -> Storage:
    """The attachments' storage: STORAGES[CHAT_FILES_STORAGE], else the project's default."""
    try:
        return storages[conf.CHAT_FILES_STORAGE]
    except InvalidStorageError:
        return storages["default"]


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
    image = images.check(data, content_type) if content_type in INLINE_TYPES else None
    store = storage()
    data.seek(0)
    body: File[Any] = (
        File(data) if image is None or image.cleaned is None else (ContentFile(image.cleaned))
    )
    stored = store.save(folder + stored_name(name), body)
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


def upload_discard(*, user: Account, key: str) -> None:
    """Delete an upload of the user's that no post has claimed (the composer's remove button,
    a CLI send that failed); FILE_INVALID for any other, so nothing leaks about it.

    Locked as a post's claim locks it, so a discard and a post of the same upload are
    one after the other: whichever is second finds it gone.
    """
    with transaction.atomic():
        found = Attachment.objects.filter(
            key=key[:64], uploader=user, message__isnull=True, posted__isnull=True
        )
        if connection.features.has_select_for_update:
            found = found.select_for_update()
        rows = list(found)
        if not rows:
            raise ChatError(
                ErrorCode.FILE_INVALID, "No upload of yours waits to be posted under that id."
            )
        delete_attachments(rows)


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
