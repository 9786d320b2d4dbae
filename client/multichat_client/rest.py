"""The REST API, blocking, on the standard library (urllib): no dependency to install."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable
from pathlib import Path
from typing import Any, BinaryIO

from multichat_client.errors import AuthError, ConnectionLost, MultichatError, token_refused
from multichat_client.files import FileInfo, multipart_body
from multichat_client.transfer import post_streamed

UPLOAD_TIMEOUT = 300.0  # seconds without progress before an upload or download gives up
REDIRECTS = (301, 302, 303, 307, 308)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Hand a redirect back instead of following it: urllib would send the token along."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


_no_redirect = urllib.request.build_opener(_NoRedirect)


class RestClient:
    """Calls /api/ with ``Authorization: Bearer <token>``; errors raise MultichatError."""

    def __init__(self, url: str, token: str, *, timeout: float = 10) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def me(self) -> dict[str, Any]:
        """The token's user: id, username, is_staff."""
        return self._request("GET", "/api/me")

    def rooms(self, *, all: bool = False) -> list[dict[str, Any]]:
        """The rooms in the user's list (``all``: also those left), with last_seq and counts."""
        return self._request("GET", "/api/rooms?all=1" if all else "/api/rooms")["rooms"]

    def create_room(self, title: str, *, staff_only: bool = False) -> dict[str, Any]:
        """Create a room (staff_only: staff only); returns it as the room list shows it."""
        body: dict[str, Any] = {"title": title}
        if staff_only:
            body["staff_only"] = True
        return self._request("POST", "/api/rooms", body)

    def open_direct(self, users: list[str]) -> dict[str, Any]:
        """Open the direct conversation with ``users`` (made if missing); returns its room entry."""
        return self._request("POST", "/api/direct", {"users": list(users)})

    def rename_room(self, room: int, title: str) -> dict[str, Any]:
        """Rename a room you created (staff: any); returns it as the room list shows it."""
        return self._request("PATCH", f"/api/rooms/{int(room)}", {"title": title})

    def leave_room(self, room: int) -> dict[str, Any]:
        """Take a room out of your list on every device: {"room_left": room}."""
        return self._request("POST", f"/api/rooms/{int(room)}/leave")

    def join_room(self, room: int) -> dict[str, Any]:
        """Put a room you left back in your list: {"room_rejoined": room, "title", ...}."""
        return self._request("POST", f"/api/rooms/{int(room)}/join")

    def history(
        self, room: int, *, before: int | None = None, limit: int | None = None
    ) -> dict[str, Any]:
        """A page of history: {"history": room, "messages": [...oldest first], "has_more": bool}."""
        query = {k: v for k, v in (("before", before), ("limit", limit)) if v is not None}
        suffix = f"?{urllib.parse.urlencode(query)}" if query else ""
        return self._request("GET", f"/api/rooms/{int(room)}/messages{suffix}")

    def stream(self, room: int, *, after: int, limit: int | None = None) -> dict[str, Any]:
        """The room's stream after a seq: {"posts": [...], "changes": [...], "upto", "has_more"}.

        Posts as they are now and every change, over seqs after < seq <= upto:
        what a resume with since = ``after`` replays (page on with after = upto).
        """
        query: dict[str, int] = {"after": int(after)}
        if limit is not None:
            query["limit"] = limit
        return self._request(
            "GET", f"/api/rooms/{int(room)}/stream?{urllib.parse.urlencode(query)}"
        )

    def post(
        self,
        room: int,
        message: str,
        *,
        msg_type: int = 0,
        reply_to: int | None = None,
        files: Iterable[str | FileInfo] = (),
    ) -> dict[str, Any]:
        """Post a message (``reply_to``: answering that post); returns the stored frame.

        ``files``: uploads of yours not posted yet (ids or FileInfo from ``upload``),
        attached in that order; ``message`` may then be "". FILE_INVALID: one is not
        yours, already posted, or gone (nothing is posted then).
        """
        body: dict[str, Any] = {"message": message, "msg_type": msg_type}
        if reply_to is not None:
            body["reply_to"] = int(reply_to)
        ids = file_ids(files)
        if ids:
            body["files"] = ids
        return self._request("POST", f"/api/rooms/{int(room)}/messages", body)

    def upload(
        self, source: str | os.PathLike[str] | BinaryIO, *, name: str | None = None
    ) -> FileInfo:
        """Upload a file (a path, or an open binary file with ``name``) for a later post.

        The file is streamed from disk, not read into memory. Refusals raise
        MultichatError: FILE_TOO_LARGE (413), FILE_TYPE_REFUSED (415: the server
        found a type it does not take in the bytes), UPLOAD_QUOTA_EXCEEDED (429,
        ``retry_after`` seconds), BAD_REQUEST (an empty file). A file that cannot
        be read raises OSError before anything is sent.
        """
        body = multipart_body(source, name=name)
        headers = {
            "Authorization": f"Bearer {self.token}",
            "Accept": "application/json",
            "Content-Type": body.content_type,
            "Content-Length": str(body.length),
        }
        url = self.url + "/api/uploads"
        try:
            answer = post_streamed(
                url, headers, body.chunks(), timeout=max(self.timeout, UPLOAD_TIMEOUT)
            )
        except (OSError, http.client.HTTPException) as exc:
            raise ConnectionLost(f"cannot upload to the server at {self.url}: {exc}") from None
        if answer.status != 201:
            raise self._refusal(answer.status, answer.reason, url, answer.body)
        return FileInfo.from_frame(json.loads(answer.body))

    def discard(self, file: str | FileInfo) -> None:
        """Delete an upload of yours that no post has taken (``DELETE /api/uploads/<id>``).

        FILE_INVALID (404) if it is not yours, was posted, or is gone already.
        """
        key = file.id if isinstance(file, FileInfo) else str(file)
        self._request("DELETE", f"/api/uploads/{urllib.parse.quote(key, safe='')}")

    def download(
        self, file: str | FileInfo, dest: str | os.PathLike[str] | BinaryIO, *, thumb: bool = False
    ) -> int:
        """Save a posted file (a FileInfo, or its ``url``) to ``dest`` (a path or a binary file).

        ``thumb``: the image's thumbnail (WebP) instead. Follows the server's
        redirect to object storage (without the token, which is for this server
        only). Returns the bytes written. A file you may not see, or that is
        gone, raises MultichatError with status 404.
        """
        if isinstance(file, FileInfo):
            path = file.thumb if thumb else file.url
            if path is None:
                raise ValueError(f"{file.name} has no thumbnail: only images have one")
        else:
            path = file
        url = urllib.parse.urljoin(self.url + "/", path)
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {self.token}"})
        timeout = max(self.timeout, UPLOAD_TIMEOUT)
        try:
            try:
                response = _no_redirect.open(request, timeout=timeout)
            except urllib.error.HTTPError as exc:
                location = exc.headers.get("Location") if exc.code in REDIRECTS else None
                if location is None:
                    raise
                exc.close()
                # The signed URL carries its own authorization: the token must not go along.
                response = urllib.request.urlopen(
                    urllib.parse.urljoin(url, location), timeout=timeout
                )
            with response:
                if isinstance(dest, str | os.PathLike):
                    with Path(dest).open("wb") as out:
                        shutil.copyfileobj(response, out, 64 * 1024)
                        return out.tell()
                before = dest.tell()
                shutil.copyfileobj(response, dest, 64 * 1024)
                return dest.tell() - before
        except urllib.error.HTTPError as exc:
            error = self._error(exc)
            if exc.code == 404 and error.code == "HTTP_ERROR":
                # The server answers 404 alike for a missing file and one you may not see.
                error = MultichatError(
                    "NOT_FOUND", f"no such file, or you may not see it: {url}", status=404
                )
            raise error from None
        except urllib.error.URLError as exc:
            raise ConnectionLost(f"cannot fetch {url}: {exc.reason}") from None

    def edit(self, room: int, seq: int, message: str) -> dict[str, Any]:
        """Replace the text of your post ``seq``: {"changed": room, "seq": the change's seq}.

        No "seq" in the answer: the text was already that. EDIT_DENIED: not yours
        or the edit window is over; MESSAGE_INVALID: no such post, or deleted.
        """
        path = f"/api/rooms/{int(room)}/messages/{int(seq)}"
        return self._request("PATCH", path, {"message": message})

    def delete(self, room: int, seq: int) -> dict[str, Any]:
        """Delete your post ``seq`` (staff: any), leaving a tombstone: {"changed", "seq"}."""
        return self._request("DELETE", f"/api/rooms/{int(room)}/messages/{int(seq)}")

    def react(self, room: int, seq: int, emoji: str, *, on: bool = True) -> dict[str, Any]:
        """Put ``emoji`` on post ``seq`` (``on=False``: take it off): {"changed", "seq"?}.

        No "seq" in the answer: it was already so.
        """
        path = f"/api/rooms/{int(room)}/messages/{int(seq)}/reactions"
        return self._request("POST", path, {"emoji": emoji, "on": on})

    def members(self, room: int) -> dict[str, Any]:
        """Who is in a room now: {"room": id, "members": [{"username", "state"}...]}."""
        return self._request("GET", f"/api/rooms/{int(room)}/members")

    def read(self, room: int, seq: int) -> dict[str, Any]:
        """Mark a room read up to ``seq``: {"read": room, "seq": the stored position}."""
        return self._request("POST", f"/api/rooms/{int(room)}/read", {"seq": seq})

    def mentions(self, *, before: int | None = None, limit: int | None = None) -> dict[str, Any]:
        """A page of mentions: {"mentions": [...newest first], "has_more": bool}."""
        query = {k: v for k, v in (("before", before), ("limit", limit)) if v is not None}
        suffix = f"?{urllib.parse.urlencode(query)}" if query else ""
        return self._request("GET", f"/api/mentions{suffix}")

    def search(self, query: str, **filters: Any) -> dict[str, Any]:
        """A page of search results: {"search": [...newest first], "next": cursor or None}.

        ``filters``: room (id), author (username), after, before (dates or ISO
        times), cursor (the previous page's ``next``), limit.
        """
        params = {"query": query, **{k: v for k, v in filters.items() if v is not None}}
        return self._request("GET", f"/api/search?{urllib.parse.urlencode(params)}")

    def _request(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.url + path,
            data=data,
            method=method,
            headers={
                "Authorization": f"Bearer {self.token}",
                "Accept": "application/json",
                **({"Content-Type": "application/json"} if data is not None else {}),
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                raw = response.read()
                return json.loads(raw) if raw else None  # 204: no body
        except urllib.error.HTTPError as exc:
            raise self._error(exc) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ConnectionLost(f"cannot reach the server at {self.url}: {reason}") from None

    def _error(self, exc: urllib.error.HTTPError) -> MultichatError:
        try:
            body = exc.read()
        except OSError:
            body = b""
        return self._refusal(exc.code, exc.reason, exc.url, body)

    def _refusal(self, status: int, reason: str, url: str, body: bytes) -> MultichatError:
        """The error an answer with ``status`` and the API's error ``body`` stands for."""
        try:
            payload = json.loads(body)
            code, detail = payload["error"], payload.get("detail", "")
            stored_seq = payload.get("stored_seq")
            retry_after = payload.get("retry_after")
        except (ValueError, KeyError, TypeError, OSError, AttributeError):
            code, detail = "HTTP_ERROR", f"HTTP {status} {reason} from {url}"
            stored_seq = retry_after = None
        if status == 401:
            return AuthError(code, token_refused(self.url, code), status=401)
        return MultichatError(
            code, detail, status=status, stored_seq=stored_seq, retry_after=retry_after
        )


def file_ids(files: Iterable[str | FileInfo]) -> list[str]:
    """The upload ids to post: each an id, or the FileInfo an upload returned."""
    return [f.id if isinstance(f, FileInfo) else str(f) for f in files]
