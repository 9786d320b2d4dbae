"""Attachments on S3 storage, against a real S3-compatible server (SeaweedFS, testkit/s3.py).

A real server process is configured with FILES_S3_* as production would be; files
are uploaded through its REST API and fetched as a browser would: the app answers
302 to a presigned URL, and the bytes come from the bucket. The bucket itself is
looked at with boto3. Never a mock: the S3 server checks every signature.
"""

from __future__ import annotations

import http.client
import io
import json
import os
import subprocess
import sys
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from testkit import ROOT
from testkit.live import LiveServer, password_for
from testkit.s3 import S3Server

pytestmark = pytest.mark.once

EXPIRES = 4  # CHAT_FILES_URL_EXPIRES_SECONDS of the server under test: short, so expiry is seen


@dataclass
class Answer:
    """One HTTP answer: status, headers (lower-case names) and body."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def request(
    url: str, method: str = "GET", *, headers: dict[str, str] | None = None, body: bytes = b""
) -> Answer:
    """One request, redirects not followed (the 302 is what is under test)."""
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port or 80, timeout=10)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    try:
        connection.request(method, path, body=body or None, headers=headers or {})
        response = connection.getresponse()
        data = response.read()
    finally:
        connection.close()
    return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, data)


def multipart(name: str, data: bytes) -> tuple[str, bytes]:
    """A multipart/form-data body with one field ``file``: (content type, body)."""
    boundary = uuid.uuid4().hex
    body = (
        (
            f"--{boundary}\r\n"
            f'Content-Disposition: form-data; name="file"; filename="{name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return f"multipart/form-data; boundary={boundary}", body


def png(width: int = 640, height: int = 400) -> bytes:
    """A real PNG image."""
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (width, height), (30, 120, 200)).save(out, "PNG")
    return out.getvalue()


@dataclass
class Site:
    """The server under test, its bucket, and who is who."""

    live: LiveServer
    s3: S3Server
    tokens: dict[str, str]
    cookies: dict[str, str]
    room: int
    staff_room: int

    def upload(self, user: str, name: str, data: bytes) -> Answer:
        content_type, body = multipart(name, data)
        return request(
            self.live.url + "api/uploads",
            "POST",
            headers={
                "Authorization": f"Bearer {self.tokens[user]}",
                "Content-Type": content_type,
            },
            body=body,
        )

    def post(self, user: str, room: int, files: list[str], message: str = "") -> Answer:
        return request(
            self.live.url + f"api/rooms/{room}/messages",
            "POST",
            headers={
                "Authorization": f"Bearer {self.tokens[user]}",
                "Content-Type": "application/json",
            },
            body=json.dumps({"message": message, "files": files}).encode(),
        )

    def delete(self, user: str, room: int, seq: int) -> Answer:
        return request(
            self.live.url + f"api/rooms/{room}/messages/{seq}",
            "DELETE",
            headers={"Authorization": f"Bearer {self.tokens[user]}"},
        )

    def get(self, user: str | None, url: str) -> Answer:
        """GET a file's URL (as FileInfo gives it) as ``user`` (None: logged out)."""
        headers = {"Cookie": self.cookies[user]} if user else {}
        return request(urllib.parse.urljoin(self.live.url, url), headers=headers)


@pytest.fixture(scope="module")
def site(s3_server: S3Server) -> Iterator[Site]:
    """A server storing its files in the S3 server's bucket."""
    live = LiveServer(
        extra_env={**s3_server.env(), "CHAT_FILES_URL_EXPIRES_SECONDS": str(EXPIRES)}
    ).prepare()
    seeded = live.seed(
        users=["alice", "bob"],
        staff=["sam"],
        rooms=["General"],
        staff_rooms=["Staff"],
        tokens=["alice", "bob", "sam"],
    )
    live.start()
    try:
        cookies = {u: live.login_cookie(u, password_for(u)) for u in ("alice", "bob", "sam")}
        yield Site(
            live,
            s3_server,
            seeded.tokens,
            cookies,
            seeded.rooms["General"],
            seeded.rooms["Staff"],
        )
    finally:
        live.stop()


def folder(file_id: str) -> str:
    """The storage folder of one upload (the contract's storage names)."""
    return f"files/{file_id[:2]}/{file_id}/"


def wait_until(condition: Any, timeout: float, what: str) -> None:
    """Poll ``condition`` until it holds; fail saying ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.1)


def test_the_s3_server_checks_signatures(s3_server: S3Server) -> None:
    """The server the tests use is no pushover: a wrong secret and an unsigned GET are refused,
    so a URL the app signs wrongly could not pass these tests."""
    from botocore.exceptions import ClientError

    key = f"probe/{uuid.uuid4().hex}"
    s3_server.client().put_object(Bucket=s3_server.bucket, Key=key, Body=b"secret bytes")
    with pytest.raises(ClientError, match="SignatureDoesNotMatch"):
        s3_server.client(secret_key="wrong").get_object(Bucket=s3_server.bucket, Key=key)
    unsigned = request(f"{s3_server.endpoint_url}/{s3_server.bucket}/{key}")
    assert unsigned.status == 403
    assert b"secret bytes" not in unsigned.body
    s3_server.client().delete_object(Bucket=s3_server.bucket, Key=key)


def _storage_options(env: dict[str, str]) -> Any:
    """STORAGES["chat_files"] as config/settings.py builds it from ``env`` (or its error)."""
    code = (
        "import json, django; django.setup(); from django.conf import settings; "
        "print(json.dumps(settings.STORAGES['chat_files'], default=str))"
    )
    own = {k: v for k, v in os.environ.items() if not k.startswith("FILES_S3_")}
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={
            **own,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "SECRET_KEY": "x" * 50,
            "DATA_DIR": "/srv/chat",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    if done.returncode:
        return done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_files_storage_is_a_private_bucket_with_presigned_urls_when_configured(
    tmp_path,
) -> None:
    """FILES_S3_BUCKET switches the files to S3: private objects, signed (v4) short-lived URLs,
    path-style for an S3-compatible endpoint, the secret also from a file; without it the
    files are under DATA_DIR/files; a key without its secret is refused, saying what to set."""
    local = _storage_options({})
    assert local["BACKEND"] == "django.core.files.storage.FileSystemStorage"
    assert local["OPTIONS"]["location"] == "/srv/chat/files"

    secret = tmp_path / "secret"
    secret.write_text("s3cr3t\n")
    on_s3 = _storage_options(
        {
            "FILES_S3_BUCKET": "chat",
            "FILES_S3_ENDPOINT_URL": "http://s3.internal:8333",
            "FILES_S3_REGION": "eu-central-1",
            "FILES_S3_ACCESS_KEY_ID": "AKID",
            "FILES_S3_SECRET_ACCESS_KEY_FILE": str(secret),
            "CHAT_FILES_URL_EXPIRES_SECONDS": "30",
        }
    )
    assert on_s3["BACKEND"] == "storages.backends.s3.S3Storage"
    options = on_s3["OPTIONS"]
    assert options["bucket_name"] == "chat"
    assert options["secret_key"] == "s3cr3t"
    assert options["default_acl"] == "private"
    assert options["querystring_auth"] is True
    assert options["querystring_expire"] == 30
    assert options["signature_version"] == "s3v4"
    assert options["addressing_style"] == "path"

    on_aws = _storage_options({"FILES_S3_BUCKET": "chat"})
    assert on_aws["OPTIONS"]["endpoint_url"] is None
    assert "addressing_style" not in on_aws["OPTIONS"]  # AWS: boto3's own (virtual hosts)

    refused = _storage_options({"FILES_S3_BUCKET": "chat", "FILES_S3_ACCESS_KEY_ID": "AKID"})
    assert isinstance(refused, str)
    assert "FILES_S3_SECRET_ACCESS_KEY" in refused


def test_an_upload_goes_to_the_bucket_and_is_served_by_a_presigned_redirect(site: Site) -> None:
    """An image uploaded through the API is in the bucket with its thumbnail; the uploader
    gets a 302 to a presigned URL on the S3 server that answers the same bytes, inline, as
    image/png, and the thumbnail the same way."""
    data = png()
    answer = site.upload("alice", "shot.png", data)
    assert answer.status == 201, answer.body
    info = answer.json()
    assert info["type"] == "image/png"
    assert site.s3.keys(folder(info["id"])) == sorted(
        [folder(info["id"]) + "shot.png", folder(info["id"]) + "thumb.webp"]
    )
    stored = site.s3.client().get_object(Bucket=site.s3.bucket, Key=folder(info["id"]) + "shot.png")
    assert stored["Body"].read() == data
    unsigned = request(f"{site.s3.endpoint_url}/{site.s3.bucket}/{folder(info['id'])}shot.png")
    assert unsigned.status == 403 and data not in unsigned.body  # private: no public URL

    redirect = site.get("alice", info["url"])
    assert redirect.status == 302, redirect.body
    location = redirect.headers["location"]
    assert location.startswith(f"{site.s3.endpoint_url}/{site.s3.bucket}/")
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert query["X-Amz-Expires"] == [str(EXPIRES)]
    assert redirect.body == b""  # the app sent no bytes of the file
    assert redirect.headers["x-content-type-options"] == "nosniff"

    fetched = request(location)
    assert fetched.status == 200
    assert fetched.body == data
    assert fetched.headers["content-type"] == "image/png"
    assert fetched.headers["content-disposition"].startswith("inline")

    thumb = site.get("alice", info["thumb"])
    assert thumb.status == 302
    image = request(thumb.headers["location"])
    assert image.status == 200
    assert image.headers["content-type"] == "image/webp"
    assert image.body[:4] == b"RIFF" and image.body[8:12] == b"WEBP"
    assert image.headers["content-disposition"].startswith("inline")


def test_the_redirect_is_not_cached_past_the_url_it_points_to(site: Site) -> None:
    """A browser that cached the 302 longer than its presigned URL lives would follow it to a
    403: the redirect's Cache-Control lets it live no longer than the URL."""
    info = site.upload("alice", "cached.png", png(32, 32)).json()
    redirect = site.get("alice", info["url"])
    assert redirect.status == 302
    cache = redirect.headers.get("cache-control", "")
    directives = dict(part.strip().partition("=")[::2] for part in cache.split(",") if part.strip())
    assert "no-store" in directives or int(directives.get("max-age", "0")) <= EXPIRES, cache


def test_a_presigned_url_stops_working_when_it_expires(site: Site) -> None:
    """The URL the app hands out works at once and is refused by the S3 server once
    CHAT_FILES_URL_EXPIRES_SECONDS have passed."""
    data = png(64, 64)
    info = site.upload("alice", "brief.png", data).json()
    issued = time.monotonic()
    location = site.get("alice", info["url"]).headers["location"]
    first = request(location)
    assert first.status == 200 and first.body == data
    wait_until(lambda: request(location).status == 403, EXPIRES + 10, "the presigned URL to expire")
    assert time.monotonic() - issued >= EXPIRES - 1  # not refused early (1 s: clock rounding)
    expired = request(location)
    assert expired.status == 403 and data not in expired.body


def test_text_is_served_from_the_bucket_as_an_attachment_of_its_sniffed_type(site: Site) -> None:
    """HTML named .png is stored as text (or refused): from the bucket it comes as a download
    with the contract's Content-Disposition, never as a page."""
    page = b"<html><script>alert(document.cookie)</script></html>"
    answer = site.upload("alice", "evil page.png", page)
    if answer.status == 415:
        assert answer.json()["error"] == "FILE_TYPE_REFUSED"
        return
    assert answer.status == 201, answer.body
    info = answer.json()
    assert info["type"] == "text/plain"
    fetched = request(site.get("alice", info["url"]).headers["location"])
    assert fetched.status == 200
    assert fetched.body == page
    assert fetched.headers["content-type"].startswith("text/plain")
    quoted = urllib.parse.quote(info["name"])
    assert fetched.headers["content-disposition"] == f"attachment; filename*=UTF-8''{quoted}"


def test_only_who_may_enter_the_room_gets_a_url(site: Site) -> None:
    """Before it is posted only the uploader gets the file; posted in a staff-only room, staff
    get it and a non-member (and anyone logged out) gets 404 with no URL, thumbnail too."""
    info = site.upload("sam", "plan.png", png(200, 100)).json()
    for user in ("bob", None):
        for url in (info["url"], info["thumb"]):
            refused = site.get(user, url)
            assert refused.status == 404, (user, url)
            assert "location" not in refused.headers
            assert site.s3.endpoint_url.encode() not in refused.body
    assert site.get("sam", info["url"]).status == 302

    posted = site.post("sam", site.staff_room, [info["id"]], "the plan")
    assert posted.status == 201, posted.body
    assert [f["id"] for f in posted.json()["files"]] == [info["id"]]
    for url in (info["url"], info["thumb"]):
        assert site.get("sam", url).status == 302
        for user in ("bob", "alice", None):
            refused = site.get(user, url)
            assert refused.status == 404, (user, url)
            assert "location" not in refused.headers


def test_deleting_the_post_deletes_its_objects(site: Site) -> None:
    """A deleted post's files leave the bucket, and their URLs answer 404."""
    first = site.upload("alice", "a.png", png(50, 50)).json()
    second = site.upload("alice", "notes.txt", b"plain notes\n").json()
    kept = site.upload("alice", "kept.txt", b"another post's file\n").json()
    posted = site.post("alice", site.room, [first["id"], second["id"]], "two files")
    other = site.post("alice", site.room, [kept["id"]])
    assert posted.status == 201 and other.status == 201
    assert site.s3.keys(folder(first["id"]))
    assert site.s3.keys(folder(second["id"]))

    deleted = site.delete("alice", site.room, posted.json()["seq"])
    assert deleted.status == 200, deleted.body
    wait_until(
        lambda: not site.s3.keys(folder(first["id"])) and not site.s3.keys(folder(second["id"])),
        10,
        "the deleted post's objects to leave the bucket",
    )
    assert site.get("alice", first["url"]).status == 404
    assert site.get("bob", second["url"]).status == 404
    assert site.s3.keys(folder(kept["id"])) == [folder(kept["id"]) + "kept.txt"]
    assert site.get("bob", kept["url"]).status == 302


def test_purge_files_removes_orphan_objects_and_nothing_else(site: Site) -> None:
    """purge_files removes unposted uploads past CHAT_UPLOAD_ORPHAN_HOURS from the bucket, and
    objects no row names once they are over an hour old (younger ones may be uploads under
    way); a posted file and a fresh upload stay."""
    old = site.upload("bob", "old.txt", b"never posted\n").json()
    fresh = site.upload("bob", "fresh.txt", b"posted soon\n").json()
    posted = site.upload("bob", "posted.png", png(40, 40)).json()
    assert site.post("bob", site.room, [posted["id"]]).status == 201
    stray = "files/zz/zzstray0000000000000000/left.bin"
    site.s3.client().put_object(Bucket=site.s3.bucket, Key=stray, Body=b"no row names me")
    site.live.execute_sql(
        "UPDATE chat_attachment SET created = datetime(created, '-25 hours') WHERE key = %s",
        (old["id"],),
    )

    site.live.manage("purge_files")

    assert site.s3.keys(folder(old["id"])) == []
    assert site.get("bob", old["url"]).status == 404
    young = site.s3.keys("files/zz/")
    assert stray in young, young  # too young to be called stray yet

    # Two hours on (the S3 objects' own Last-Modified is what is compared), it goes.
    site.live.manage(
        "shell",
        "-c",
        "from datetime import timedelta; from django.utils import timezone; "
        "from chat import files; print(files.files_purge(now=timezone.now() + timedelta(hours=2)))",
    )
    assert stray not in site.s3.keys("files/zz/")
    assert site.s3.keys(folder(fresh["id"])) == [folder(fresh["id"]) + "fresh.txt"]
    assert site.s3.keys(folder(posted["id"])) == sorted(
        [folder(posted["id"]) + "posted.png", folder(posted["id"]) + "thumb.webp"]
    )
    assert site.get("alice", posted["url"]).status == 302


def test_purge_messages_takes_the_old_posts_objects_with_them(site: Site) -> None:
    """The retention purge deletes the files of the posts it removes from the bucket, and
    leaves a newer post's files."""
    archive = site.live.create_room("Archive")
    old = site.upload("alice", "old.png", png(30, 30)).json()
    new = site.upload("alice", "new.txt", b"still wanted\n").json()
    first = site.post("alice", archive, [old["id"]])
    assert first.status == 201 and site.post("alice", archive, [new["id"]]).status == 201
    changed = site.live.testkit(
        "date-messages", room_id=archive, times={str(first.json()["seq"]): "2020-01-01T00:00Z"}
    )
    assert changed == 1

    site.live.manage("purge_messages", "--days", "30")

    wait_until(lambda: not site.s3.keys(folder(old["id"])), 10, "the old post's objects to go")
    assert site.s3.keys(folder(new["id"])) == [folder(new["id"]) + "new.txt"]
    assert site.get("alice", new["url"]).status == 302


def test_a_file_named_like_the_thumbnail_does_not_overwrite_it(site: Site) -> None:
    """S3 overwrites an object of the same name: an image uploaded as thumb.webp is kept
    beside its own thumbnail, and each URL answers its own bytes."""
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (900, 600), (200, 40, 40)).save(out, "WEBP")
    data = out.getvalue()
    answer = site.upload("alice", "thumb.webp", data)
    assert answer.status == 201, answer.body
    info = answer.json()
    assert info["name"] == "thumb.webp"
    assert len(site.s3.keys(folder(info["id"]))) == 2
    original = request(site.get("alice", info["url"]).headers["location"])
    thumb = request(site.get("alice", info["thumb"]).headers["location"])
    assert original.status == thumb.status == 200
    assert original.body == data
    assert thumb.body != data
    assert Image.open(io.BytesIO(thumb.body)).size == (480, 320)


@pytest.mark.browser
def test_images_from_the_bucket_show_in_the_page(site: Site, browser) -> None:
    """The page's CSP lets in the bucket's origin (img-src), so an image the serve view
    redirects to S3 is drawn inline, thumbnail and lightbox alike; without it Chromium
    blocks the redirect's target and the image stays empty."""
    from playwright.sync_api import expect

    from chat.tests.test_browser_ui import join, open_chat

    page = open_chat(browser, site.live, "alice")
    try:
        join(page, site.room)
        uploaded = site.upload("alice", "bucket.png", png(300, 200))
        assert uploaded.status == 201, uploaded.body
        assert site.post("alice", site.room, [uploaded.json()["id"]], "from S3").status == 201
        pane = page.locator(f".room-pane[data-room-id='{site.room}']")
        thumb = pane.locator(".message[data-seq]").last.locator(".file-thumb img")
        expect(thumb).to_have_attribute("alt", "bucket.png")
        page.wait_for_function(
            "(img) => img.complete && img.naturalWidth > 0", arg=thumb.element_handle()
        )
        endpoint = urllib.parse.urlsplit(site.s3.endpoint_url)
        policy = page.evaluate(
            "async () => (await fetch(location.href)).headers.get('content-security-policy')"
        )
        assert f"{endpoint.scheme}://{endpoint.netloc}" in policy
    finally:
        page.context.close()
