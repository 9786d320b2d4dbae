"""Attachments in the client, without a server: FileInfo, the upload body, the CLI's checks."""

import email.parser
import email.policy
import io
import os
import subprocess
import sys

import pytest

from multichat_client import Change, FileInfo, Message
from multichat_client.files import CHUNK, human_size, multipart_body

SHOT = {
    "id": "AbCdEfGhIjKlMnOpQrStUv",
    "name": "shot.png",
    "type": "image/png",
    "size": 12345,
    "url": "/files/AbCdEfGhIjKlMnOpQrStUv/shot.png",
    "thumb": "/files/AbCdEfGhIjKlMnOpQrStUv/thumb",
    "width": 1280,
    "height": 720,
}
NOTES = {
    "id": "ZyXwVuTsRqPoNmLkJiHgFe",
    "name": "notes.txt",
    "type": "text/plain",
    "size": 5,
    "url": "/files/ZyXwVuTsRqPoNmLkJiHgFe/notes.txt",
}
POST = {
    "msg_type": 0,
    "room": 3,
    "seq": 7,
    "username": "ann",
    "message": "look",
    "ts": "2026-11-29T22:00:00+00:00",
    "files": [SHOT, NOTES],
}


def parts_of(body) -> list:
    """The parts of a multipart body, parsed by the standard library's MIME parser."""
    raw = b"".join(body.chunks())
    assert len(raw) == body.length
    head = f"Content-Type: {body.content_type}\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + raw)
    return list(message.iter_parts())


def test_a_message_frame_gives_its_files_in_order_and_back():
    """files: FileInfo in upload order (thumb, width, height: images only); to_frame restores it."""
    message = Message.from_frame(POST)
    assert [f.name for f in message.files] == ["shot.png", "notes.txt"]
    assert message.files[0] == FileInfo(**SHOT)
    assert (message.files[1].thumb, message.files[1].width) == (None, None)
    assert message.to_frame() == POST
    plain = {k: v for k, v in POST.items() if k != "files"}
    assert Message.from_frame(plain).files == ()
    assert "files" not in Message.from_frame(plain).to_frame()


def test_deleting_a_post_drops_its_files_and_an_edit_keeps_them():
    """Change.apply: a tombstone has no files; an edit changes only the text."""
    post = Message.from_frame(POST)
    common = {"room": 3, "target": 7, "username": "ann", "ts": POST["ts"]}
    edited = Change(seq=8, change="edit", message="", edited=POST["ts"], **common).apply(post)
    assert (edited.message, edited.files) == ("", post.files)
    deleted = Change(seq=9, change="delete", **common).apply(edited)
    assert (deleted.deleted, deleted.files) == (True, ())


def test_the_upload_body_is_one_file_part_with_the_files_bytes(tmp_path):
    """multipart_body: one part named ``file``, with the name and bytes; its length known first."""
    data = os.urandom(3 * CHUNK + 17)
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    body = multipart_body(path)
    assert body.content_type.startswith("multipart/form-data; boundary=")
    (part,) = parts_of(body)
    assert part.get_param("name", header="content-disposition") == "file"
    assert part.get_filename() == "big.bin"
    assert part.get_payload(decode=True) == data
    pieces = list(body.chunks())
    assert max(len(p) for p in pieces) == CHUNK  # streamed in blocks, never the file whole


def test_the_upload_body_escapes_the_name_and_takes_an_open_file():
    """A name with quotes and a line break cannot break the part's headers; an open file counts
    from where it stands."""
    stream = io.BytesIO(b"skip:payload")
    stream.seek(5)
    body = multipart_body(stream, name='a"b\r\nX-Evil: 1.txt')
    (part,) = parts_of(body)
    assert part.get_filename() == "a%22b%0D%0AX-Evil: 1.txt"
    assert "X-Evil" not in part
    assert part.get_payload(decode=True) == b"payload"


def test_a_missing_file_fails_before_anything_is_sent(tmp_path):
    """multipart_body raises the OS's error for a path that cannot be read."""
    with pytest.raises(FileNotFoundError):
        multipart_body(tmp_path / "absent.png")


@pytest.mark.parametrize(
    ("size", "shown"),
    [
        (0, "0 B"),
        (999, "999 B"),
        (12_345, "12.3 kB"),
        (3_400_000, "3.4 MB"),
        (2 * 10**12, "2000.0 GB"),
    ],
)
def test_sizes_read_as_a_file_manager_shows_them(size, shown):
    """human_size: powers of 1000, one decimal."""
    assert human_size(size) == shown


def test_send_with_an_unreadable_file_is_a_usage_error_before_any_request(tmp_path):
    """`send ROOM --file absent` exits 2 naming the file; the (unreachable) server is not asked."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MULTICHAT_")}
    env.update(
        HOME=str(tmp_path),
        MULTICHAT_CONFIG=str(tmp_path / "absent.toml"),
        MULTICHAT_URL="http://127.0.0.1:9",  # nothing listens: a request would fail with exit 1
        MULTICHAT_TOKEN="mct_00000000_x",
    )
    done = subprocess.run(
        [sys.executable, "-m", "multichat_client", "send", "General", "--file", "absent.png"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert "cannot read absent.png" in done.stderr
