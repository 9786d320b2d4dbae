"""Attachments: uploads and their checks, posting with files, serving, deleting, purging.

Through the REST API and the socket in process (Django's test client, channels'
communicator); the size guard on the raw body and the whole path end to end
run against a real server process in test_files_live.py.
"""

import io
import json
import os
import zipfile
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone
from PIL import Image

from chat import files, services
from chat.models import Attachment, Message
from testkit.factories import bearer

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def file_storage(settings, tmp_path):
    """Each test's files in its own directory."""
    settings.STORAGES = {
        **settings.STORAGES,
        "chat_files": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "files")},
        },
    }
    assert files.storage().location == str(tmp_path / "files")  # Django re-reads STORAGES
    return tmp_path / "files"


def stored_files(root: Path) -> set[str]:
    """Every stored file's name, relative to the storage's root."""
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def png(width=64, height=48, color=(200, 30, 30)) -> bytes:
    """A PNG of that size."""
    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, "PNG")
    return out.getvalue()


def jpeg_with_gps(width=640, height=480, orientation=1) -> bytes:
    """A JPEG with EXIF: a camera make, a date, an orientation and a GPS position."""
    image = Image.new("RGB", (width, height), (10, 120, 200))
    exif = Image.Exif()
    exif[0x010F] = "TestCam"  # Make
    exif[0x0112] = orientation
    exif.get_ifd(0x8769)[0x9003] = "2026:11:29 12:00:00"  # DateTimeOriginal
    gps = exif.get_ifd(0x8825)
    gps[1] = "N"
    gps[2] = (52.0, 31.0, 12.0)
    gps[3] = "E"
    gps[4] = (13.0, 24.0, 18.0)
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif.tobytes(), quality=90)
    return out.getvalue()


def upload(client: Client, data: bytes, name: str = "shot.png"):
    """POST one file to /api/uploads."""
    return client.post("/api/uploads", {"file": named(data, name)})


def named(data: bytes, name: str) -> io.BytesIO:
    stream = io.BytesIO(data)
    stream.name = name
    return stream


def post(client: Client, room_id, body):
    return client.post(
        f"/api/rooms/{room_id}/messages", json.dumps(body), content_type="application/json"
    )


# --- uploads ----------------------------------------------------------------------------


def test_upload_answers_a_file_info_with_the_sniffed_type(alice, file_storage):
    """A PNG named .txt is image/png, with its size, dimensions, URLs; both files stored."""
    response = upload(bearer(alice), png(64, 48), "notes.txt")
    assert response.status_code == 201, response.content
    info = response.json()
    assert info["type"] == "image/png"
    assert info["name"] == "notes.txt"
    assert (info["width"], info["height"]) == (64, 48)
    assert len(info["id"]) == 22
    assert info["url"] == f"/files/{info['id']}/notes.txt"
    assert info["thumb"] == f"/files/{info['id']}/thumb"
    key = info["id"]
    assert stored_files(file_storage) == {
        f"files/{key[:2]}/{key}/notes.txt",
        f"files/{key[:2]}/{key}/thumb.webp",
    }
    assert info["size"] == (file_storage / f"files/{key[:2]}/{key}/notes.txt").stat().st_size


def test_html_named_png_is_plain_text_and_binary_garbage_is_refused(alice, settings):
    """Markup is text/plain whatever its name; bytes of no allowed type are 415."""
    client = bearer(alice)
    html = upload(client, b"<html><script>alert(1)</script></html>", "evil.png")
    assert html.status_code == 201
    assert html.json()["type"] == "text/plain"
    assert "thumb" not in html.json() and "width" not in html.json()
    svg = upload(client, b'<svg xmlns="http://www.w3.org/2000/svg"><script/></svg>', "a.svg")
    assert svg.json()["type"] == "text/plain"
    garbage = upload(client, bytes(range(256)) * 4, "x.bin")
    assert garbage.status_code == 415
    assert garbage.json()["error"] == "FILE_TYPE_REFUSED"
    settings.CHAT_UPLOAD_ALLOWED_TYPES = ["image/png"]
    text = upload(client, b"hello", "a.txt")
    assert text.status_code == 415
    assert "text/plain" in text.json()["detail"]


def test_zip_containers_are_told_apart():
    """A zip, a docx and an odt by their members, whatever their names."""

    def zipped(members: dict[str, bytes]) -> io.BytesIO:
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w") as archive:
            for name, data in members.items():
                archive.writestr(name, data)
        out.seek(0)
        return out

    assert files.sniff(zipped({"a.txt": b"x"})) == "application/zip"
    docx = zipped({"[Content_Types].xml": b"<x/>", "word/document.xml": b"<x/>"})
    assert files.sniff(docx) == (
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    )
    odt = zipped({"mimetype": b"application/vnd.oasis.opendocument.text", "content.xml": b""})
    assert files.sniff(odt) == "application/vnd.oasis.opendocument.text"
    assert files.sniff(io.BytesIO(b"%PDF-1.4\n%...")) == "application/pdf"


def test_upload_too_large_empty_two_files_or_none(alice, settings):
    """Each bad upload has its code: FILE_TOO_LARGE, and BAD_REQUEST for the shapes."""
    settings.CHAT_UPLOAD_MAX_BYTES = 1000
    client = bearer(alice)
    big = upload(client, b"a" * 1001, "big.txt")
    assert big.status_code == 413
    assert big.json()["error"] == "FILE_TOO_LARGE"
    empty = upload(client, b"", "empty.txt")
    assert (empty.status_code, empty.json()["error"]) == (400, "BAD_REQUEST")
    two = client.post("/api/uploads", {"file": [named(b"a", "a.txt"), named(b"b", "b.txt")]})
    assert (two.status_code, two.json()["error"]) == (400, "BAD_REQUEST")
    other = client.post("/api/uploads", {"other": named(b"a", "a.txt")})
    assert (other.status_code, other.json()["error"]) == (400, "BAD_REQUEST")
    none = client.post("/api/uploads", {})
    assert none.status_code == 400
    assert Attachment.objects.count() == 0


def test_quota_refuses_with_retry_after(alice, bob, settings):
    """Over the bytes of 24 hours: 429 with retry_after; another user is not affected."""
    settings.CHAT_UPLOAD_QUOTA_BYTES_PER_DAY = 2500
    client = bearer(alice)
    assert upload(client, b"a" * 1000, "1.txt").status_code == 201
    assert upload(client, b"b" * 1000, "2.txt").status_code == 201
    refused = upload(client, b"c" * 1000, "3.txt")
    assert refused.status_code == 429
    body = refused.json()
    assert body["error"] == "UPLOAD_QUOTA_EXCEEDED"
    assert 86000 < body["retry_after"] <= 86400
    assert int(refused["Retry-After"]) >= 86000
    assert upload(bearer(bob), b"d" * 1000, "4.txt").status_code == 201
    # A day later the first uploads no longer count.
    Attachment.objects.filter(uploader=alice).update(created=timezone.now() - timedelta(days=1))
    assert upload(client, b"c" * 1000, "3.txt").status_code == 201


def test_file_urls_are_what_reverse_gives():
    """The frames' URLs, built from a cached base, are exactly Django's reverse()."""
    from django.urls import reverse

    for name in ("a b#?%.txt", "ärger & co;=.pdf", "~:@!$'()*+,.png", "x/y"):
        info = files.file_info({"id": "K" * 22, "name": name, "type": "x", "size": 1, "width": 1})
        if "/" not in name:
            assert info.url == reverse("chat-file", kwargs={"key": "K" * 22, "name": name})
        assert info.thumb == reverse("chat-file-thumb", kwargs={"key": "K" * 22})


def test_uploads_side_by_side_cannot_pass_the_quota_together(
    alice, settings, monkeypatch, file_storage
):
    """The quota is checked again once the upload is counted: an upload that began under it
    while another was under way (here: the first check sees nothing) is refused and removed."""
    settings.CHAT_UPLOAD_QUOTA_BYTES_PER_DAY = 1500
    client = bearer(alice)
    assert upload(client, b"a" * 1000, "1.txt").status_code == 201
    checks = []
    real = files._check_quota

    def first_check_blind(user, size, now):
        checks.append(size)
        if len(checks) > 1:  # the check after the row is stored is the real one
            real(user, size, now)

    monkeypatch.setattr(files, "_check_quota", first_check_blind)
    refused = upload(client, b"b" * 1000, "2.txt")
    assert refused.status_code == 429
    assert refused.json()["error"] == "UPLOAD_QUOTA_EXCEEDED"
    assert checks == [1000, 0]
    assert list(Attachment.objects.values_list("name", flat=True)) == ["1.txt"]
    assert [Path(n).name for n in stored_files(file_storage)] == ["1.txt"]


def test_names_are_made_safe(alice):
    """No path, no control characters, at most 255 characters; "thumb" is renamed."""
    assert files.safe_name("../../etc/passwd") == "passwd"
    assert files.safe_name("C:\\Users\\me\\a\u202eb.txt") == "ab.txt"
    assert files.safe_name("a\x00b\nc.png") == "abc.png"
    long = files.safe_name("ä" * 400 + ".jpeg")
    assert len(long) == 255 and long.endswith(".jpeg")
    assert files.safe_name("..") == "file"
    assert files.safe_name("thumb") == "thumb_"
    response = upload(bearer(alice), b"hello", "ä" * 300 + ".txt")
    assert response.status_code == 201
    assert len(response.json()["name"]) == 255


def test_exif_gps_goes_and_the_rest_stays(alice, file_storage):
    """The stored JPEG has no GPS position but keeps its make and date; size as shown."""
    response = upload(bearer(alice), jpeg_with_gps(640, 480, orientation=6), "cam.jpg")
    assert response.status_code == 201
    info = response.json()
    # Orientation 6 (rotated 90°): shown 480 wide, 640 high.
    assert (info["width"], info["height"]) == (480, 640)
    key = info["id"]
    with Image.open(file_storage / f"files/{key[:2]}/{key}/cam.jpg") as stored:
        exif = stored.getexif()
        assert 0x8825 not in exif
        assert exif[0x010F] == "TestCam"
        assert exif[0x0112] == 6
        assert exif.get_ifd(0x8769)[0x9003] == "2026:11:29 12:00:00"
    with Image.open(file_storage / f"files/{key[:2]}/{key}/thumb.webp") as thumb:
        assert thumb.format == "WEBP"
        assert thumb.size == (360, 480)


def test_a_phones_mpo_jpeg_is_kept_as_a_plain_jpeg_without_gps(alice, file_storage):
    """A JPEG with more images (MPO, as phones save them) is image/jpeg, stored as its first
    image alone, with no GPS in it."""
    first = Image.open(io.BytesIO(jpeg_with_gps(320, 240)))
    second = Image.new("RGB", (160, 120))
    exif = first.getexif()
    out = io.BytesIO()
    first.save(out, "MPO", save_all=True, append_images=[second], exif=exif.tobytes())
    response = upload(bearer(alice), out.getvalue(), "phone.jpg")
    assert response.status_code == 201, response.content
    info = response.json()
    assert (info["type"], info["width"], info["height"]) == ("image/jpeg", 320, 240)
    key = info["id"]
    with Image.open(file_storage / f"files/{key[:2]}/{key}/phone.jpg") as stored:
        assert stored.format == "JPEG"
        assert getattr(stored, "n_frames", 1) == 1
        assert 0x8825 not in stored.getexif()
        assert stored.getexif()[0x010F] == "TestCam"


def test_session_uploads_need_the_csrf_token(alice):
    """From the browser (session cookie) an upload needs X-CSRFToken, as every API write."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    refused = client.post("/api/uploads", {"file": named(b"hi", "a.txt")})
    assert refused.status_code == 403
    client.get("/")  # the chat page sets the CSRF cookie
    token = client.cookies["csrftoken"].value
    accepted = client.post(
        "/api/uploads", {"file": named(b"hi", "a.txt")}, headers={"X-CSRFToken": token}
    )
    assert accepted.status_code == 201


def test_an_image_named_like_the_thumbnail_keeps_both(alice, file_storage):
    """An upload named thumb.webp is stored beside its thumbnail, not over it."""
    out = io.BytesIO()
    Image.new("RGB", (600, 300)).save(out, "WEBP")
    info = upload(bearer(alice), out.getvalue(), "thumb.webp").json()
    key = info["id"]
    assert info["name"] == "thumb.webp"
    assert stored_files(file_storage) == {
        f"files/{key[:2]}/{key}/thumb_.webp",
        f"files/{key[:2]}/{key}/thumb.webp",
    }
    reader = session(alice)
    with Image.open(io.BytesIO(b"".join(reader.get(info["url"]).streaming_content))) as full:
        assert full.size == (600, 300)
    with Image.open(io.BytesIO(b"".join(reader.get(info["thumb"]).streaming_content))) as thumb:
        assert thumb.size == (480, 240)


def test_thumbnail_is_at_most_480_pixels(alice, file_storage):
    """A wide image's thumbnail is 480 wide, in proportion; a small one keeps its size."""
    client = bearer(alice)
    key = upload(client, png(1920, 1080), "wide.png").json()["id"]
    with Image.open(file_storage / f"files/{key[:2]}/{key}/thumb.webp") as thumb:
        assert thumb.size == (480, 270)
    small = upload(client, png(20, 10), "small.png").json()["id"]
    with Image.open(file_storage / f"files/{small[:2]}/{small}/thumb.webp") as thumb:
        assert thumb.size == (20, 10)


def test_decompression_bomb_and_broken_image_are_refused(alice, monkeypatch):
    """Over MAX_IMAGE_PIXELS: FILE_TOO_LARGE; a PNG whose data is cut off: BAD_REQUEST."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    client = bearer(alice)
    bomb = upload(client, png(100, 100), "bomb.png")  # 10,000 px: ten times the limit
    assert (bomb.status_code, bomb.json()["error"]) == (413, "FILE_TOO_LARGE")
    near = upload(client, png(40, 40), "near.png")  # 1,600 px: over, under twice
    assert (near.status_code, near.json()["error"]) == (413, "FILE_TOO_LARGE")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 89_478_485)
    broken = upload(client, png(300, 300)[:200], "broken.png")
    assert (broken.status_code, broken.json()["error"]) == (400, "BAD_REQUEST")
    assert Attachment.objects.count() == 0


# --- posting ----------------------------------------------------------------------------


def test_post_with_files_over_rest_carries_them_in_every_frame(alice, bob, room):
    """The post, history, the stream and search show the files, in upload order."""
    client = bearer(alice)
    first = upload(client, png(), "a.png").json()
    second = upload(client, b"notes", "b.txt").json()
    response = post(client, room.pk, {"message": "", "files": [second["id"], first["id"]]})
    assert response.status_code == 201, response.content
    frame = response.json()
    assert frame["message"] == ""
    assert frame["files"] == [first, second]
    reader = bearer(bob)
    history = reader.get(f"/api/rooms/{room.pk}/messages").json()["messages"]
    assert history[-1]["files"] == [first, second]
    stream = reader.get(f"/api/rooms/{room.pk}/stream?after=0").json()
    assert stream["posts"][-1]["files"] == [first, second]
    services.message_send(user=alice, room_id=room.pk, text="findable words")
    post(
        client,
        room.pk,
        {"message": "caption findable", "files": [upload(client, b"x").json()["id"]]},
    )
    found = reader.get("/api/search?query=findable").json()["search"]
    assert [len(r.get("files", [])) for r in found] == [1, 0]
    message = Message.objects.get(seq=frame["seq"], room=room)
    assert [a.key for a in message.attachments.order_by("created")] == [first["id"], second["id"]]


def test_file_invalid_stores_nothing_and_takes_no_seq(alice, bob, room):
    """Someone else's upload, an already posted one, or an unknown id: 404 FILE_INVALID."""
    mine = upload(bearer(alice), b"mine").json()["id"]
    theirs = upload(bearer(bob), b"theirs").json()["id"]
    client = bearer(alice)
    for ids in ([theirs], [mine, theirs], ["A" * 22]):
        refused = post(client, room.pk, {"message": "hi", "files": ids})
        assert (refused.status_code, refused.json()["error"]) == (404, "FILE_INVALID")
    room.refresh_from_db()
    assert room.last_seq == 0 and Message.objects.count() == 0
    assert post(client, room.pk, {"message": "hi", "files": [mine]}).status_code == 201
    again = post(client, room.pk, {"message": "again", "files": [mine]})
    assert again.json()["error"] == "FILE_INVALID"
    room.refresh_from_db()
    assert room.last_seq == 1


def test_files_limits_on_a_post(alice, room, settings):
    """Too many files, one twice, or neither text nor files: BAD_REQUEST."""
    settings.CHAT_UPLOAD_MAX_FILES = 2
    client = bearer(alice)
    ids = [upload(client, f"{i}".encode(), f"{i}.txt").json()["id"] for i in range(3)]
    assert post(client, room.pk, {"message": "x", "files": ids}).json()["error"] == "BAD_REQUEST"
    twice = post(client, room.pk, {"message": "x", "files": [ids[0], ids[0]]})
    assert twice.json()["error"] == "BAD_REQUEST"
    assert post(client, room.pk, {"message": " "}).json()["error"] == "BAD_REQUEST"
    assert post(client, room.pk, {"message": "", "files": ids[:2]}).status_code == 201


async def test_socket_post_with_files_reaches_two_sockets(alice, bob, room, connect):
    """``send`` with files: both members' sockets get the same files in the frame."""
    from channels.db import database_sync_to_async

    key = await database_sync_to_async(
        lambda: files.attachment_info(files.upload(user=alice, file=_uploaded(png(), "p.png")))
    )()
    a = await connect(alice)
    b = await connect(bob)
    for ws in (a, b):
        await ws.join(room.pk)
    await a.send({"command": "send", "room": room.pk, "message": "", "files": [key.id]})

    def is_post(frame):
        return "msg_type" in frame and frame.get("seq")

    got_a = await a.recv_until(is_post, timeout=5)
    got_b = await b.recv_until(is_post, timeout=5)
    assert got_a["files"] == got_b["files"]
    assert got_a["files"][0]["id"] == key.id
    assert got_a["files"][0]["thumb"].endswith("/thumb")
    # Resuming with ``since`` replays the post with its files.
    c = await connect(bob)
    await c.send({"command": "join", "room": room.pk, "since": 0})
    replayed = await c.recv_until(is_post, timeout=5)
    assert replayed["files"] == got_a["files"]
    # Someone else's upload over the socket: FILE_INVALID, nothing stored.
    await b.send({"command": "send", "room": room.pk, "message": "x", "files": [key.id]})
    error = await b.recv_until(lambda f: "error" in f, timeout=5)
    assert error["error"] == "FILE_INVALID"


def _uploaded(data: bytes, name: str):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, data)


def test_edit_keeps_files_and_may_empty_the_text(alice, room):
    """An edit changes only the text; with files it may be blank, without them it may not."""
    client = bearer(alice)
    key = upload(client, b"data").json()["id"]
    seq = post(client, room.pk, {"message": "caption", "files": [key]}).json()["seq"]
    plain = post(client, room.pk, {"message": "plain"}).json()["seq"]
    edit = client.patch(
        f"/api/rooms/{room.pk}/messages/{seq}",
        json.dumps({"message": ""}),
        content_type="application/json",
    )
    assert edit.status_code == 200, edit.content
    refused = client.patch(
        f"/api/rooms/{room.pk}/messages/{plain}",
        json.dumps({"message": "  "}),
        content_type="application/json",
    )
    assert refused.json()["error"] == "BAD_REQUEST"
    history = client.get(f"/api/rooms/{room.pk}/messages").json()["messages"]
    assert history[0]["message"] == "" and history[0]["files"][0]["id"] == key


# --- serving ----------------------------------------------------------------------------


def _cases(alice, bob, staff, room):
    """A posted PNG and an unposted upload of alice's."""
    client = bearer(alice)
    posted = upload(client, png(), "p.png").json()
    post(client, room.pk, {"message": "", "files": [posted["id"]]})
    waiting = upload(client, png(), "w.png").json()
    return posted, waiting


def session(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_serving_follows_the_room_rule(alice, bob, staff, make_user, room, staff_room):
    """Uploader before posting, members after; everyone else 404, logged out too."""
    carol = make_user("carol")
    client = bearer(alice)
    posted = upload(client, png(), "p.png").json()
    post(client, room.pk, {"message": "", "files": [posted["id"]]})
    waiting = upload(client, png(), "w.png").json()
    secret = bearer(staff)
    staff_file = upload(secret, png(), "s.png").json()
    post(secret, staff_room.pk, {"message": "", "files": [staff_file["id"]]})
    from chat import rooms

    conversation, _ = rooms.direct_open(user=alice, usernames=["bob"])
    dm = upload(client, png(), "d.png").json()
    post(client, conversation.pk, {"message": "", "files": [dm["id"]]})

    def status(who, info, route):
        return (who if isinstance(who, Client) else session(who)).get(info[route]).status_code

    for route in ("url", "thumb"):
        assert status(alice, posted, route) == 200
        assert status(bob, posted, route) == 200
        assert status(Client(), posted, route) == 404
        assert status(alice, waiting, route) == 200
        assert status(bob, waiting, route) == 404
        assert status(staff, waiting, route) == 404
        assert status(staff, staff_file, route) == 200
        assert status(alice, staff_file, route) == 404
        assert status(bob, dm, route) == 200
        assert status(carol, dm, route) == 404
        assert status(staff, dm, route) == 404  # being staff opens no conversation
        assert status(bearer(bob), posted, route) == 200  # a token works too
        assert status(bearer(carol), dm, route) == 404
        assert status(Client(headers={"Authorization": "Bearer nope"}), posted, route) == 404
    assert session(alice).get(f"/files/{'B' * 22}/x.png").status_code == 404
    assert session(alice).get(f"/files/{posted['id']}/thumb").status_code == 200
    text = upload(client, b"plain", "t.txt").json()
    assert session(alice).get(f"/files/{text['id']}/thumb").status_code == 404


def test_headers_inline_only_for_the_four_image_types(alice):
    """nosniff, a sandbox CSP, private caching; SVG and text are downloads."""
    client = bearer(alice)
    image = upload(client, png(), "p.png").json()
    svg = upload(client, b'<svg xmlns="http://www.w3.org/2000/svg"/>', "x.svg").json()
    reader = session(alice)
    shown = reader.get(image["url"])
    assert shown["Content-Type"] == "image/png"
    assert shown["Content-Disposition"] == "inline; filename*=UTF-8''p.png"
    assert b"".join(shown.streaming_content) == png()
    download = reader.get(svg["url"])
    assert download["Content-Type"] == "text/plain"
    assert download["Content-Disposition"] == "attachment; filename*=UTF-8''x.svg"
    thumb = reader.get(image["thumb"])
    assert thumb["Content-Type"] == "image/webp"
    assert thumb["Content-Disposition"].startswith("inline;")
    for response in (shown, download, thumb):
        assert response["X-Content-Type-Options"] == "nosniff"
        assert response["Content-Security-Policy"] == "default-src 'none'; sandbox"
        assert response["Cache-Control"] == "private, max-age=3600"


def test_accel_redirect_hands_the_file_to_nginx(alice, settings):
    """With CHAT_FILES_ACCEL_REDIRECT: an empty answer naming the stored file, same headers."""
    settings.CHAT_FILES_ACCEL_REDIRECT = "/_files/"
    info = upload(bearer(alice), b"hello", "a b.txt").json()
    response = session(alice).get(info["url"])
    key = info["id"]
    assert response.status_code == 200
    assert response.content == b""
    assert response["X-Accel-Redirect"] == f"/_files/files/{key[:2]}/{key}/a%20b.txt"
    assert response["Content-Disposition"] == "attachment; filename*=UTF-8''a%20b.txt"
    assert response["Content-Type"] == "text/plain"


# --- deleting and purging ---------------------------------------------------------------


def test_deleting_a_post_deletes_its_files(alice, bob, room, file_storage):
    """The tombstone has no files, the stored bytes are gone, the URLs answer 404."""
    client = bearer(alice)
    info = upload(client, png(), "p.png").json()
    seq = post(client, room.pk, {"message": "x", "files": [info["id"]]}).json()["seq"]
    kept = upload(client, b"other", "o.txt").json()
    assert client.delete(f"/api/rooms/{room.pk}/messages/{seq}").status_code == 200
    history = bearer(bob).get(f"/api/rooms/{room.pk}/messages").json()["messages"]
    assert "files" not in history[0] and history[0]["deleted"]
    assert session(alice).get(info["url"]).status_code == 404
    assert stored_files(file_storage) == {f"files/{kept['id'][:2]}/{kept['id']}/o.txt"}
    assert list(Attachment.objects.values_list("key", flat=True)) == [kept["id"]]


def test_purge_messages_deletes_their_files(alice, room, file_storage):
    """purge_messages takes the old posts' files with them, and nothing newer."""
    client = bearer(alice)
    old = upload(client, b"old", "old.txt").json()
    post(client, room.pk, {"message": "old", "files": [old["id"]]})
    Message.objects.update(created=timezone.now() - timedelta(days=40))
    new = upload(client, b"new", "new.txt").json()
    post(client, room.pk, {"message": "new", "files": [new["id"]]})
    call_command("purge_messages", "--days", "30")
    assert list(Attachment.objects.values_list("key", flat=True)) == [new["id"]]
    assert stored_files(file_storage) == {f"files/{new['id'][:2]}/{new['id']}/new.txt"}


def test_purge_files_removes_orphans_and_nothing_else(alice, room, file_storage, settings):
    """Old unposted uploads, rows whose post is gone, and files no row names go; the rest stays."""
    client = bearer(alice)
    stale = upload(client, png(), "stale.png").json()
    fresh = upload(client, b"fresh", "fresh.txt").json()
    posted = upload(client, b"posted", "posted.txt").json()
    post(client, room.pk, {"message": "x", "files": [posted["id"]]})
    gone = upload(client, b"gone", "gone.txt").json()
    post(client, room.pk, {"message": "y", "files": [gone["id"]]})
    Attachment.objects.filter(key=stale["id"]).update(created=timezone.now() - timedelta(hours=25))
    Attachment.objects.filter(key=posted["id"]).update(created=timezone.now() - timedelta(hours=25))
    Message.objects.filter(text="y").delete()  # behind the services' back: the row stays
    stray = file_storage / "files" / "zz" / "zzstray" / "left.txt"
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"left behind")
    hour_ago = (timezone.now() - timedelta(hours=2)).timestamp()
    os.utime(stray, (hour_ago, hour_ago))
    young = file_storage / "files" / "zz" / "zzyoung" / "uploading.txt"
    young.parent.mkdir(parents=True)
    young.write_bytes(b"an upload under way")
    out = io.StringIO()
    call_command("purge_files", stdout=out)
    assert set(Attachment.objects.values_list("key", flat=True)) == {fresh["id"], posted["id"]}
    assert stored_files(file_storage) == {
        f"files/{fresh['id'][:2]}/{fresh['id']}/fresh.txt",
        f"files/{posted['id'][:2]}/{posted['id']}/posted.txt",
        "files/zz/zzyoung/uploading.txt",  # too young to tell from an upload under way
    }
    assert "1 upload(s) not posted" in out.getvalue()
    assert "1 whose post is gone and 1 stray" in out.getvalue()


def test_room_deletion_and_admin_delete_remove_files(alice, room, file_storage, staff):
    """Deleting a room deletes its posts' files."""
    client = bearer(alice)
    info = upload(client, b"in room", "r.txt").json()
    post(client, room.pk, {"message": "x", "files": [info["id"]]})
    services.room_delete(room=room)
    assert Attachment.objects.count() == 0
    assert stored_files(file_storage) == set()


# --- admin ------------------------------------------------------------------------------


@pytest.fixture
def superuser_client(make_user):
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_superuser("root", password="pw-root-123")
    client = Client()
    client.force_login(user)
    return client


def test_admin_lists_searches_and_deletes_files(superuser_client, alice, room, file_storage):
    """The list shows name, type, readable size, uploader, room; search by name; read only;
    deleting one removes its stored files and takes it out of its post."""
    client = bearer(alice)
    kept = upload(client, b"k" * 2048, "kept-notes.txt").json()
    gone = upload(client, png(), "holiday.png").json()
    post(client, room.pk, {"message": "two", "files": [kept["id"], gone["id"]]})
    listing = superuser_client.get("/admin/chat/attachment/").content.decode()
    assert "kept-notes.txt" in listing and "holiday.png" in listing
    assert "2.0\xa0KB" in listing and "General" in listing and "alice" in listing
    searched = superuser_client.get("/admin/chat/attachment/", {"q": "holiday"}).content.decode()
    assert "holiday.png" in searched and "kept-notes.txt" not in searched
    assert superuser_client.get("/admin/chat/attachment/add/").status_code == 403
    row = Attachment.objects.get(key=gone["id"])
    page = superuser_client.get(f"/admin/chat/attachment/{row.pk}/change/")
    assert page.status_code == 200 and b'name="name"' not in page.content  # read only
    response = superuser_client.post(f"/admin/chat/attachment/{row.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert stored_files(file_storage) == {f"files/{kept['id'][:2]}/{kept['id']}/kept-notes.txt"}
    history = client.get(f"/api/rooms/{room.pk}/messages").json()["messages"]
    assert [f["id"] for f in history[-1]["files"]] == [kept["id"]]


# --- the post's statements --------------------------------------------------------------


def test_two_posts_racing_for_one_upload_store_one(alice, room):
    """Two posts naming the same upload at once: one is stored with it, the other is
    FILE_INVALID and takes no seq (PostgreSQL: the claim's row lock; SQLite: one writer)."""
    import threading

    from django.db import connection as default_connection

    from chat.errors import ChatError

    key = upload(bearer(alice), b"contested").json()["id"]
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def post_it(text):
        try:
            barrier.wait(timeout=10)
            services.message_send(user=alice, room_id=room.pk, text=text, files=[key])
            outcomes.append("stored")
        except ChatError as error:
            outcomes.append(error.code)
        finally:
            default_connection.close()

    threads = [threading.Thread(target=post_it, args=(t,)) for t in ("one", "two")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcomes) == ["FILE_INVALID", "stored"]
    room.refresh_from_db()
    assert room.last_seq == 1
    assert Message.objects.get().files.count(key) == 1


@pytest.mark.postgres
def test_a_post_without_files_keeps_its_one_statement_on_postgresql(alice, room):
    """PostgreSQL: a plain post is still one statement (seq, read position and insert)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (runs in the PostgreSQL pass of scripts/test)")
    services.room_post(room_id=room.pk, user=alice, text="warm up")  # compiles the rule once
    with CaptureQueriesContext(connection) as queries:
        message = services.room_post(room_id=room.pk, user=alice, text="plain")
    assert len(queries) == 1, [q["sql"] for q in queries]
    assert queries[0]["sql"].startswith("WITH taken AS")
    assert Message.objects.get(pk=message.pk).files == ""


def test_a_storage_alias_the_project_lacks_falls_back_to_default(settings):
    """CHAT_FILES_STORAGE names the alias; one the project does not define is "default"."""
    from django.core.files.storage import storages

    assert files.storage() is storages["chat_files"]
    settings.CHAT_FILES_STORAGE = "no_such_alias"
    assert files.storage() is storages["default"]
