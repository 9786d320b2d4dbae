"""Files and images in messages, in the browser (issue 20): attach with the button, by drag and
drop and by pasting, progress and refusals on the composer's chips, images inline for everyone
in the room, the lightbox, file cards that download, and a deleted post losing its files live."""

import random
import re
import struct
import zlib

import pytest

from chat.tests.test_browser_a11y import violations
from chat.tests.test_browser_changes import action, api_post, reload
from chat.tests.test_browser_i18n import GERMAN
from chat.tests.test_browser_ui import join, messages, open_chat, shoot
from testkit.live import LiveServer

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def server():
    """A real server with alice, bob and a room for each test."""
    live = LiveServer().prepare()
    live.rooms = live.seed(
        users=["alice", "bob"],
        rooms=[
            "Button",
            "Cancel",
            "Discard",
            "Drop",
            "Paste",
            "Refused",
            "Lightbox",
            "Cards",
            "Deleted",
            "Edited",
            "Resume",
            "Taken",
            "Deutsch",
            "Axe",
        ],
    ).rooms
    live.start()
    yield live
    live.stop()


@pytest.fixture(scope="module")
def limited():
    """A real server with tight attachment limits: 2 files a post, 3000 bytes a day."""
    live = LiveServer(
        extra_env={"CHAT_UPLOAD_MAX_FILES": "2", "CHAT_UPLOAD_QUOTA_BYTES_PER_DAY": "3000"}
    ).prepare()
    live.rooms = live.seed(users=["alice"], rooms=["Limits"]).rooms
    live.start()
    yield live
    live.stop()


def png(width: int, height: int, fill: tuple[int, int, int] | str = (79, 70, 229)) -> bytes:
    """A PNG of one colour, a "sky" (a dusk gradient over a sea, for the screenshots) or "noise"
    (it does not compress, so it is large); made here, so the test needs no image library."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    def sky(y: int) -> bytes:
        t = y / height
        if t > 0.62:  # the sea, darker towards the bottom
            shade = 1 - (t - 0.62)
            return bytes((int(30 * shade), int(60 * shade), int(110 * shade))) * width
        return bytes((int(250 - 120 * t), int(160 - 90 * t), int(90 + 120 * t))) * width

    noise = random.Random(20)
    rows = []
    for y in range(height):
        if fill == "noise":
            row = noise.randbytes(3 * width)
        elif fill == "sky":
            row = sky(y)
        else:
            row = bytes(fill) * width
        rows.append(b"\x00" + row)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"".join(rows), 9))
        + chunk(b"IEND", b"")
    )


def pane(page, room: int):
    """A room's pane."""
    return page.locator(f".room-pane[data-room-id='{room}']")


def attach(page, room: int, *files: dict) -> None:
    """Pick ``files`` ({name, mimeType, buffer}) with the pane's "Attach files" button."""
    with page.expect_file_chooser() as chooser:
        pane(page, room).locator(".attach").click()
    chooser.value.set_files(list(files))


def send(page, room: int, text: str = "") -> None:
    """Type ``text`` (maybe nothing) and press Send once it may be pressed."""
    from playwright.sync_api import expect

    composer = pane(page, room).locator(".composer")
    composer.locator(".composer-input").fill(text)
    expect(composer.locator(".composer-send")).to_be_enabled()
    composer.locator(".composer-send").click()


def stored(page, room: int):
    """The newest stored message in a room's pane, once it is stored."""
    from playwright.sync_api import expect

    last = messages(page, room).last
    expect(last).to_have_attribute("data-seq", re.compile(r"\d+"))
    return last


def throttle(page, bytes_per_second: int):
    """Slow the page's uploads (Chromium's network emulation), so progress can be seen."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {
            "offline": False,
            "latency": 0,
            "downloadThroughput": -1,
            "uploadThroughput": bytes_per_second,
        },
    )
    return cdp


def test_an_image_attached_with_the_button_shows_progress_and_appears_inline_for_others(
    browser, server
):
    """Alice picks two images: each chip shows a labelled progress bar while it uploads and Send
    waits, saying why; the post shows both thumbnails, sized from the frame, for Bob."""
    from playwright.sync_api import expect

    room = server.rooms["Button"]
    alice = open_chat(browser, server, "alice")
    bob = open_chat(browser, server, "bob")
    join(alice, room)
    join(bob, room)
    composer = pane(alice, room).locator(".composer")
    throttle(alice, 128 * 1024)
    big = png(450, 300, "noise")  # 405 KB of noise: about three seconds at 128 KB/s
    attach(
        alice,
        room,
        {"name": "harbour.png", "mimeType": "image/png", "buffer": big},
        {"name": "dock.png", "mimeType": "image/png", "buffer": png(300, 400, (22, 163, 74))},
    )
    chips = composer.locator(".upload")
    expect(chips).to_have_count(2)
    uploading = chips.filter(has_text="harbour.png")
    progress = uploading.locator("progress.upload-progress")
    expect(progress).to_have_attribute("aria-label", "Uploading harbour.png")
    alice.wait_for_function(
        "() => document.querySelector('.upload-progress')?.value > 0", polling=50
    )
    composer.locator(".composer-input").fill("The harbour at dawn")
    expect(composer.locator(".composer-send")).to_be_disabled()
    expect(composer.locator(".upload-wait")).to_have_text("Waiting for the uploads to finish…")
    shoot(alice, "files-composer.png")
    expect(chips.locator(".upload-done")).to_have_count(2, timeout=30_000)
    expect(composer.locator(".upload-wait")).to_have_text("")
    send(alice, room, "The harbour at dawn")
    expect(chips).to_have_count(0)
    for page in (alice, bob):
        post = stored(page, room)
        expect(post.locator(".body")).to_have_text("The harbour at dawn")
        images = post.locator(".file-thumb img")
        expect(images).to_have_count(2)
        # In upload order (the small one finished first); each box is drawn at the image's shape,
        # fitted into 320 x 240, before it loads, so nothing jumps.
        expect(images.nth(0)).to_have_attribute("alt", "dock.png")
        expect(images.nth(0)).to_have_attribute("width", "180")
        expect(images.nth(0)).to_have_attribute("height", "240")
        expect(images.nth(1)).to_have_attribute("alt", "harbour.png")
        expect(images.nth(1)).to_have_attribute("width", "320")
        expect(images.nth(1)).to_have_attribute("height", "213")
        expect(images.nth(1)).to_have_attribute("loading", "lazy")
        page.wait_for_function(
            "(img) => img.complete && img.naturalWidth > 0", arg=images.nth(1).element_handle()
        )
    alice.context.close()
    bob.context.close()


def test_removing_an_upload_in_flight_aborts_it(browser, server):
    """The remove button of a chip whose file is still uploading aborts the request: the chip
    goes, Send stops waiting, the message goes out without it, the server stored nothing."""
    from playwright.sync_api import expect

    room = server.rooms["Cancel"]
    alice = open_chat(browser, server, "alice")
    join(alice, room)
    throttle(alice, 32 * 1024)  # 405 KB: over ten seconds, time enough to change one's mind
    attach(
        alice,
        room,
        {"name": "second-thoughts.png", "mimeType": "image/png", "buffer": png(450, 300, "noise")},
    )
    composer = pane(alice, room).locator(".composer")
    composer.locator(".composer-input").fill("never mind the picture")
    expect(composer.locator(".composer-send")).to_be_disabled()
    remove = composer.locator(".upload-remove")
    expect(remove).to_have_accessible_name("Cancel the upload of second-thoughts.png")
    with alice.expect_event(
        "requestfailed", predicate=lambda request: request.url.endswith("/api/uploads")
    ) as failed:
        remove.click()
    assert "ABORTED" in (failed.value.failure or "")
    expect(composer.locator(".upload")).to_have_count(0)
    expect(composer.locator(".upload-wait")).to_have_text("")
    send(alice, room, "never mind the picture")
    expect(stored(alice, room).locator(".files")).to_have_count(0)
    rows = "select count(*) from chat_attachment where name = %s"
    assert server.query(rows, ("second-thoughts.png",)) == [(0,)]
    alice.context.close()


def test_removing_a_finished_upload_deletes_it_on_the_server(browser, server):
    """Taking a finished upload out of the composer deletes it (DELETE /api/uploads/<id>):
    its row and its bytes go at once, not hours later with purge_files."""
    from pathlib import Path

    from playwright.sync_api import expect

    room = server.rooms["Discard"]
    alice = open_chat(browser, server, "alice")
    join(alice, room)
    attach(alice, room, {"name": "changed-my-mind.txt", "mimeType": "text/plain", "buffer": b"x\n"})
    composer = pane(alice, room).locator(".composer")
    chip = composer.locator(".upload[data-state='done']")
    expect(chip).to_have_count(1)
    key = chip.get_attribute("data-file-id")
    rows = "select count(*) from chat_attachment where key = %s"
    assert server.query(rows, (key,)) == [(1,)]
    with alice.expect_response(
        lambda response: response.request.method == "DELETE" and key in response.url
    ) as deleted:
        composer.locator(".upload-remove").click()
    assert deleted.value.status == 204
    expect(composer.locator(".upload")).to_have_count(0)
    assert server.query(rows, (key,)) == [(0,)]
    stored = [p for p in (Path(server.data_dir) / "files").rglob("*") if key in str(p)]
    assert [p for p in stored if p.is_file()] == []
    alice.context.close()


def test_a_file_dropped_on_the_pane_is_attached_and_sent_without_text(browser, server):
    """Dragging a file over the pane shows the drop zone; dropping uploads it; a post of only a
    file goes out and shows as a card for Bob."""
    from playwright.sync_api import expect

    room = server.rooms["Drop"]
    alice = open_chat(browser, server, "alice")
    bob = open_chat(browser, server, "bob")
    join(alice, room)
    join(bob, room)
    selector = f".room-pane[data-room-id='{room}'] .messages"
    data = alice.evaluate_handle(
        """() => { const data = new DataTransfer();
          data.items.add(new File(["name,count\\nfigs,3\\n"], "stock.csv", { type: "text/csv" }));
          return data; }"""
    )
    fire = """([selector, data, kind]) => document.querySelector(selector).dispatchEvent(
        new DragEvent(kind, { bubbles: true, cancelable: true, dataTransfer: data }))"""
    alice.evaluate(fire, [selector, data, "dragenter"])
    alice.evaluate(fire, [selector, data, "dragover"])
    zone = pane(alice, room).locator(".drop-zone")
    expect(zone).to_be_visible()
    expect(zone).to_have_text("Drop files here to attach them")
    assert alice.evaluate(fire, [selector, data, "drop"]) is False  # the page took it
    expect(zone).to_be_hidden()
    composer = pane(alice, room).locator(".composer")
    expect(composer.locator(".upload .upload-name")).to_have_text("stock.csv")
    expect(composer.locator(".upload-done")).to_have_count(1)
    send(alice, room)
    card = stored(bob, room).locator(".file-card")
    expect(card.locator(".file-name")).to_have_text("stock.csv")
    expect(card.locator(".file-download")).to_have_attribute("href", re.compile(r"/stock\.csv$"))
    expect(stored(bob, room).locator(".body")).to_be_hidden()  # nothing to read but the file
    alice.context.close()
    bob.context.close()


def test_a_pasted_screenshot_gets_a_dated_name_and_uploads(browser, server):
    """An image pasted from the clipboard (a PNG drawn on a canvas) is attached as "Pasted image
    <date> <time>.png" and posted inline."""
    from playwright.sync_api import expect

    room = server.rooms["Paste"]
    alice = open_chat(browser, server, "alice")
    join(alice, room)
    box = pane(alice, room).locator(".composer-input")
    box.evaluate(
        """async (box) => {
          const canvas = document.createElement("canvas");
          canvas.width = 64; canvas.height = 48;
          const g = canvas.getContext("2d");
          g.fillStyle = "#d92d20"; g.fillRect(0, 0, 64, 48);
          const blob = await new Promise((done) => canvas.toBlob(done, "image/png"));
          const data = new DataTransfer();
          data.items.add(new File([blob], "image.png", { type: "image/png" }));
          box.dispatchEvent(new ClipboardEvent("paste", { clipboardData: data, bubbles: true,
                                                          cancelable: true }));
        }"""
    )
    chip = pane(alice, room).locator(".upload")
    expect(chip.locator(".upload-name")).to_have_text(
        re.compile(r"^Pasted image \d{4}-\d\d-\d\d \d\d\.\d\d\.png$")
    )
    expect(chip.locator(".upload-done")).to_be_visible()
    expect(box).to_have_value("")  # the image went to the chips, not into the text
    send(alice, room, "look")
    image = stored(alice, room).locator(".file-thumb img")
    expect(image).to_have_attribute("alt", re.compile(r"^Pasted image "))
    expect(image).to_have_attribute("width", "64")
    alice.context.close()


def test_a_refused_file_shows_the_servers_reason_and_is_left_out(browser, server):
    """A program (not an allowed type) is refused by the server: its chip shows the server's
    detail, Send stays off without text, and the message goes out without it."""
    from playwright.sync_api import expect

    room = server.rooms["Refused"]
    alice = open_chat(browser, server, "alice")
    join(alice, room)
    elf = b"\x7fELF\x02\x01\x01\x00" + bytes(8) + b"\x02\x00\x3e\x00" + bytes(200)
    attach(alice, room, {"name": "tool.png", "mimeType": "image/png", "buffer": elf})
    composer = pane(alice, room).locator(".composer")
    chip = composer.locator(".upload")
    expect(chip).to_have_attribute("data-state", "failed")
    error = chip.locator(".upload-error")
    expect(error).to_have_attribute("role", "alert")
    expect(error).not_to_be_empty()
    detail = alice.evaluate(
        """async () => {
          const form = new FormData();
          form.append("file", new File([new Uint8Array([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0,
            0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0x3e, 0])], "tool.png", { type: "image/png" }));
          const token = document.querySelector("input[name=csrfmiddlewaretoken]").value;
          const reply = await fetch("/api/uploads", { method: "POST", body: form,
                                                      headers: { "X-CSRFToken": token } });
          return [reply.status, await reply.json()];
        }"""
    )
    assert detail[0] == 415 and detail[1]["error"] == "FILE_TYPE_REFUSED"
    expect(error).to_have_text(detail[1]["detail"])  # the server's words
    expect(composer.locator(".composer-send")).to_be_disabled()
    send(alice, room, "no attachment after all")
    post = stored(alice, room)
    expect(post.locator(".body")).to_have_text("no attachment after all")
    expect(post.locator(".files")).to_have_count(0)
    expect(composer.locator(".upload")).to_have_count(0)
    # A file over the size limit is refused in the page, before any byte is sent.
    limit = alice.evaluate("() => JSON.parse(document.getElementById('chat-config').textContent)")
    assert limit["uploadMaxBytes"] > 0
    alice.evaluate(
        """([selector, size]) => {
          const data = new DataTransfer();
          data.items.add(new File([new Uint8Array(size)], "huge.bin"));
          const box = document.querySelector(selector);
          box.dispatchEvent(new ClipboardEvent("paste", { clipboardData: data, bubbles: true,
                                                          cancelable: true }));
        }""",
        [f".room-pane[data-room-id='{room}'] .composer-input", limit["uploadMaxBytes"] + 1],
    )
    expect(composer.locator(".upload-error")).to_have_text(
        re.compile(r"^This file is larger than ")
    )
    composer.locator(".upload-remove").click()
    expect(composer.locator(".upload")).to_have_count(0)
    expect(composer.locator(".attach")).to_be_focused()  # the focus is not lost with the chip
    alice.context.close()


def test_the_file_count_and_the_daily_quota_are_said_on_the_chips(browser, limited):
    """A third file for one post is refused in the page (CHAT_UPLOAD_MAX_FILES = 2); once the
    day's quota is used, the server's UPLOAD_QUOTA_EXCEEDED detail shows on the chip."""
    from playwright.sync_api import expect

    room = limited.rooms["Limits"]
    alice = open_chat(browser, limited, "alice")
    join(alice, room)
    attach(
        alice,
        room,
        *[
            {"name": f"part{n}.txt", "mimeType": "text/plain", "buffer": b"x" * 1000 + b"\n"}
            for n in (1, 2, 3)
        ],
    )
    composer = pane(alice, room).locator(".composer")
    expect(composer.locator(".upload-done")).to_have_count(2)
    third = composer.locator(".upload").filter(has_text="part3.txt")
    expect(third.locator(".upload-error")).to_have_text("A message may have at most 2 files.")
    send(alice, room, "two parts")
    expect(stored(alice, room).locator(".file-card")).to_have_count(2)
    attach(alice, room, {"name": "more.txt", "mimeType": "text/plain", "buffer": b"y" * 1500})
    error = composer.locator(".upload-error")
    expect(error).to_be_visible()
    reply = alice.evaluate(
        """async () => {
          const form = new FormData();
          form.append("file", new File(["y".repeat(1500)], "more.txt"));
          const token = document.querySelector("input[name=csrfmiddlewaretoken]").value;
          const reply = await fetch("/api/uploads", { method: "POST", body: form,
                                                      headers: { "X-CSRFToken": token } });
          return [reply.status, await reply.json()];
        }"""
    )
    assert reply[0] == 429 and reply[1]["error"] == "UPLOAD_QUOTA_EXCEEDED"
    expect(error).to_have_text(reply[1]["detail"])
    alice.context.close()


def test_the_lightbox_shows_the_full_image_moves_with_arrows_and_returns_the_focus(browser, server):
    """Enter on a thumbnail opens the image in a dialog (name, size, download); → shows the
    post's next image; Escape closes it and the focus returns to the thumbnail shown last."""
    from playwright.sync_api import expect

    room = server.rooms["Lightbox"]
    alice = open_chat(browser, server, "alice")
    join(alice, room)
    # One after the other: a post's files are in upload order, the order the uploads finished.
    first = png(1200, 800, "sky")
    attach(alice, room, {"name": "first.png", "mimeType": "image/png", "buffer": first})
    expect(pane(alice, room).locator(".upload-done")).to_have_count(1)
    second = png(640, 480, (217, 45, 32))
    attach(alice, room, {"name": "second.png", "mimeType": "image/png", "buffer": second})
    expect(pane(alice, room).locator(".upload-done")).to_have_count(2)
    send(alice, room, "two pictures")
    thumbs = stored(alice, room).locator(".file-thumb")
    expect(thumbs).to_have_count(2)
    thumbs.first.focus()
    alice.keyboard.press("Enter")
    box = alice.locator("dialog.lightbox")
    expect(box).to_be_visible()
    expect(box.locator(".lightbox-close")).to_be_focused()
    expect(box.locator(".lightbox-name")).to_have_text("first.png")
    expect(box.locator(".lightbox-size")).to_contain_text("1200 \u00d7 800")
    image = box.locator("img.lightbox-image")
    expect(image).to_have_attribute("src", re.compile(r"/files/[A-Za-z0-9_-]{22}/first\.png$"))
    alice.wait_for_function(
        "(img) => img.complete && img.naturalWidth === 1200", arg=image.element_handle()
    )
    expect(box.locator(".lightbox-count")).to_have_text("Image 1 of 2")
    shoot(alice, "files-lightbox.png")
    assert violations(alice) == []
    alice.keyboard.press("ArrowRight")
    expect(box.locator(".lightbox-name")).to_have_text("second.png")
    expect(box.locator(".file-download")).to_have_attribute("download", "second.png")
    alice.keyboard.press("Escape")
    expect(box).to_have_count(0)
    expect(thumbs.nth(1)).to_be_focused()
    thumbs.first.click()
    alice.locator("dialog.lightbox .lightbox-close").click()
    expect(thumbs.first).to_be_focused()
    alice.context.close()


def test_a_file_card_downloads_the_files_bytes(browser, server):
    """A PDF posted by Alice shows as a card (icon, name, type, size); Bob's Download saves the
    very bytes she uploaded, under its name; after a reload, history shows the same files."""
    from playwright.sync_api import expect

    room = server.rooms["Cards"]
    alice = open_chat(browser, server, "alice")
    bob = open_chat(browser, server, "bob")
    join(alice, room)
    join(bob, room)
    pdf = (
        b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
        + bytes(range(256)) * 8
    )
    attach(alice, room, {"name": "minutes.pdf", "mimeType": "application/pdf", "buffer": pdf})
    expect(pane(alice, room).locator(".upload-done")).to_have_count(1)
    pier = png(480, 320, "sky")
    attach(alice, room, {"name": "pier.png", "mimeType": "image/png", "buffer": pier})
    expect(pane(alice, room).locator(".upload-done")).to_have_count(2)
    send(alice, room, "The minutes, and a photo of the pier")
    card = stored(bob, room).locator(".file-card")
    expect(card.locator(".file-name")).to_have_text("minutes.pdf")
    expect(card.locator(".file-meta")).to_have_text("application/pdf · 2.1 KB")
    with bob.expect_download() as download:
        card.locator(".file-download").click()
    assert download.value.suggested_filename == "minutes.pdf"
    with open(download.value.path(), "rb") as saved:
        assert saved.read() == pdf
    shoot(bob, "files-post.png")
    # History shows the same files after a reload.
    reload(bob, room)
    post = stored(bob, room)
    expect(post.locator(".file-card .file-name")).to_have_text("minutes.pdf")
    expect(post.locator(".file-thumb img")).to_have_attribute("alt", "pier.png")
    alice.context.close()
    bob.context.close()


def test_a_deleted_post_loses_its_files_live(browser, server):
    """Alice deletes her post of an image and a file: Bob's copy becomes a tombstone without
    them at once, and after a reload too."""
    from playwright.sync_api import expect

    room = server.rooms["Deleted"]
    alice = open_chat(browser, server, "alice")
    bob = open_chat(browser, server, "bob")
    join(alice, room)
    join(bob, room)
    attach(
        alice,
        room,
        {"name": "oops.png", "mimeType": "image/png", "buffer": png(100, 100)},
        {"name": "notes.txt", "mimeType": "text/plain", "buffer": b"private notes\n"},
    )
    expect(pane(alice, room).locator(".upload-done")).to_have_count(2)
    send(alice, room, "wrong room")
    theirs = stored(bob, room)
    expect(theirs.locator(".file-thumb")).to_have_count(1)
    expect(theirs.locator(".file-card")).to_have_count(1)
    theirs.locator(".file-thumb").click()  # Bob is looking at it when it goes
    expect(bob.locator("dialog.lightbox")).to_be_visible()
    action(alice, stored(alice, room), "delete")
    alice.locator("dialog.confirm-delete .dialog-danger").click()
    expect(theirs).to_have_attribute("data-deleted", "true")
    expect(theirs.locator(".files")).to_have_count(0)
    expect(bob.locator("dialog.lightbox")).to_have_count(0)
    reload(bob, room)
    expect(stored(bob, room)).to_have_attribute("data-deleted", "true")
    expect(stored(bob, room).locator(".files")).to_have_count(0)
    alice.context.close()
    bob.context.close()


def test_an_edit_may_empty_the_text_of_a_post_with_files_which_stay(browser, server):
    """Alice edits her caption away: the post keeps its image for both, with no empty body;
    an edit that brings text back shows it again."""
    from playwright.sync_api import expect

    room = server.rooms["Edited"]
    alice = open_chat(browser, server, "alice")
    bob = open_chat(browser, server, "bob")
    join(alice, room)
    join(bob, room)
    attach(alice, room, {"name": "bay.png", "mimeType": "image/png", "buffer": png(120, 80)})
    expect(pane(alice, room).locator(".upload-done")).to_have_count(1)
    send(alice, room, "caption with a typo")
    mine, theirs = stored(alice, room), stored(bob, room)
    action(alice, mine, "edit")
    mine.locator(".msg-editor-input").fill("")
    mine.locator(".msg-editor-input").press("Enter")
    for post in (mine, theirs):
        expect(post.locator(".edited-mark")).to_be_visible()
        expect(post.locator(".body")).to_be_hidden()
        expect(post.locator(".file-thumb img")).to_have_attribute("alt", "bay.png")
    action(alice, mine, "edit")
    mine.locator(".msg-editor-input").fill("the bay")
    mine.locator(".msg-editor-input").press("Enter")
    for post in (mine, theirs):
        expect(post.locator(".body")).to_have_text("the bay")
        expect(post.locator(".body")).to_be_visible()
        expect(post.locator(".file-thumb")).to_have_count(1)
    alice.context.close()
    bob.context.close()


def test_a_post_refused_for_its_files_keeps_them_for_the_edit(browser, server):
    """An upload posted meanwhile elsewhere (here through the REST API) makes the composer's
    post fail with FILE_INVALID: nothing is stored, the failure says why in words, and Edit
    puts the text and the file back into the composer."""
    from playwright.sync_api import expect

    room = server.rooms["Taken"]
    alice = open_chat(browser, server, "alice")
    join(alice, room)
    attach(alice, room, {"name": "once.txt", "mimeType": "text/plain", "buffer": b"once\n"})
    composer = pane(alice, room).locator(".composer")
    chip = composer.locator(".upload")
    expect(chip).to_have_attribute("data-state", "done")
    key = chip.get_attribute("data-file-id")
    elsewhere = api_post(alice, room, {"message": "posted from another tab", "files": [key]})
    assert [info["name"] for info in elsewhere["files"]] == ["once.txt"]
    expect(messages(alice, room)).to_have_count(1)
    send(alice, room, "here it is")
    failed = pane(alice, room).locator(".message.pending.failed")
    expect(failed.locator(".send-error")).to_have_text(
        "Not sent: An attached file is gone or already posted. Remove it and send again."
    )
    expect(messages(alice, room)).to_have_count(1)  # nothing stored
    failed.locator(".edit").click()
    expect(failed).to_have_count(0)
    expect(composer.locator(".composer-input")).to_have_value("here it is")
    expect(chip).to_have_attribute("data-file-id", key)
    chip.locator(".upload-remove").click()
    send(alice, room, "here it is")
    expect(messages(alice, room)).to_have_count(2)
    expect(stored(alice, room).locator(".files")).to_have_count(0)
    alice.context.close()


def test_files_go_out_in_order_after_a_drop_and_come_in_with_the_resume(browser, server, proxy):
    """Alice's connection drops: her post with an image waits in the outbox with the one after
    it, and both go out in order once she is back; Bob's file, posted meanwhile, reaches her in
    the replay."""
    from playwright.sync_api import expect

    room = server.rooms["Resume"]
    alice = open_chat(browser, proxy, "alice")  # page, uploads and socket go through the proxy
    bob = open_chat(browser, server, "bob")
    join(alice, room)
    join(bob, room)
    attach(alice, room, {"name": "away.png", "mimeType": "image/png", "buffer": png(90, 60)})
    expect(pane(alice, room).locator(".upload-done")).to_have_count(1)
    proxy.cut("refuse")
    expect(alice.locator("#conn-state")).to_have_attribute("data-state", "reconnecting")
    send(alice, room, "with a picture")
    send(alice, room, "and after it")
    pending = pane(alice, room).locator(".message.pending")
    expect(pending).to_have_count(2)
    expect(pending.first.locator(".file-thumb img")).to_have_attribute("alt", "away.png")
    attach(bob, room, {"name": "report.txt", "mimeType": "text/plain", "buffer": b"all fine\n"})
    expect(pane(bob, room).locator(".upload-done")).to_have_count(1)
    send(bob, room)
    expect(stored(bob, room).locator(".file-name")).to_have_text("report.txt")
    proxy.restore()
    expect(alice.locator("#conn-state")).to_have_attribute(
        "data-state", "connected", timeout=15_000
    )
    expect(pending).to_have_count(0, timeout=15_000)
    for page in (alice, bob):
        shown = messages(page, room)
        expect(shown).to_have_count(3)
        expect(shown.nth(0).locator(".file-card .file-name")).to_have_text("report.txt")
        expect(shown.nth(1).locator(".body")).to_have_text("with a picture")
        expect(shown.nth(1).locator(".file-thumb img")).to_have_attribute("alt", "away.png")
        expect(shown.nth(2).locator(".body")).to_have_text("and after it")
        expect(shown.nth(2).locator(".files")).to_have_count(0)
    alice.context.close()
    bob.context.close()


def test_attachments_speak_german(browser, server):
    """A de-DE browser: the attach button, the chip, the card and the sizes are German."""
    from playwright.sync_api import expect

    room = server.rooms["Deutsch"]
    alice = open_chat(browser, server, "alice", **GERMAN)
    join(alice, room)
    composer = pane(alice, room).locator(".composer")
    expect(composer.locator(".attach")).to_have_accessible_name("Dateien anhängen")
    attach(alice, room, {"name": "liste.txt", "mimeType": "text/plain", "buffer": b"Brot\n"})
    chip = composer.locator(".upload")
    expect(chip.locator(".upload-done")).to_have_text("Fertig")
    expect(chip.locator(".upload-size")).to_have_text("5 Byte")
    expect(chip.locator(".upload-remove")).to_have_accessible_name("liste.txt entfernen")
    send(alice, room, "Einkaufsliste")
    card = stored(alice, room).locator(".file-card")
    expect(card.locator(".file-download")).to_have_text("Herunterladen")
    expect(card.locator(".file-download")).to_have_accessible_name("liste.txt herunterladen")
    alice.context.close()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_attachments_pass_axe_and_work_by_keyboard(browser, server, scheme):
    """Chips (uploading, done, refused), thumbnails and cards pass axe in both schemes; Tab
    reaches "Attach files", a chip's remove button and a card's download link."""
    from playwright.sync_api import expect

    room = server.rooms["Axe"]
    alice = open_chat(browser, server, "alice", color_scheme=scheme)
    join(alice, room)
    attach(
        alice,
        room,
        {"name": f"{scheme}.png", "mimeType": "image/png", "buffer": png(200, 150)},
        {"name": f"{scheme}.txt", "mimeType": "text/plain", "buffer": b"hello\n"},
    )
    expect(pane(alice, room).locator(".upload-done")).to_have_count(2)
    send(alice, room, f"{scheme} mode")
    expect(stored(alice, room).locator(".file-card")).to_have_count(1)
    composer = pane(alice, room).locator(".composer")
    attach(alice, room, {"name": "later.txt", "mimeType": "text/plain", "buffer": b"later\n"})
    expect(composer.locator(".upload-done")).to_have_count(1)
    assert violations(alice) == []
    # The keyboard way: Tab from the box reaches "Attach files", Shift+Tab the chip's remove.
    composer.locator(".composer-input").focus()
    alice.keyboard.press("Tab")
    expect(composer.locator(".attach")).to_be_focused()
    expect(composer.locator(".attach")).to_have_accessible_name("Attach files")
    composer.locator(".composer-input").focus()
    alice.keyboard.press("Shift+Tab")
    remove = composer.locator(".upload-remove")
    expect(remove).to_be_focused()
    expect(remove).to_have_accessible_name("Remove later.txt")
    alice.keyboard.press("Enter")
    expect(composer.locator(".upload")).to_have_count(0)
    link = stored(alice, room).locator(".file-download")
    expect(link).to_have_accessible_name(f"Download {scheme}.txt")
    # On a phone every control of the attachments is big enough for a finger.
    alice.set_viewport_size(PHONE)
    attach(alice, room, {"name": "phone.txt", "mimeType": "text/plain", "buffer": b"small\n"})
    expect(composer.locator(".upload-done")).to_have_count(1)
    small = """() => [...document.querySelectorAll(
        '.attach, .upload-remove, .file-thumb, .file-download, .composer-send')]
      .filter((e) => e.checkVisibility())
      .map((e) => { const r = e.getBoundingClientRect();
        return [e.className, Math.round(r.width), Math.round(r.height)]; })
      .filter(([, w, h]) => w < 44 || h < 44)"""
    assert alice.evaluate(small) == []
    if scheme == "dark":
        shoot(alice, "files-phone-dark.png")
    assert violations(alice) == []
    alice.context.close()
