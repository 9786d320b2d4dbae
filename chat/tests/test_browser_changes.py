"""Edit, delete, react and reply in the browser (issue 16): live in two browsers, after a reload,
across a dropped connection (resume), by keyboard, and on a phone."""

import re

import pytest

from chat.tests.test_browser_ui import join, messages, open_chat, say, shoot
from testkit.live import LiveServer

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def server():
    """A real server with alice, bob, a staff member and a few rooms."""
    live = LiveServer().prepare()
    live.rooms = live.seed(
        users=["alice", "bob"],
        staff=["stella"],
        rooms=["Edits", "Deletions", "Reactions", "Keys", "Resume", "Phone", "Arrow"],
    ).rooms
    live.start()
    yield live
    live.stop()


def post(page, room: int, text: str):
    """Say ``text`` and wait until it is stored; returns its list item."""
    from playwright.sync_api import expect

    say(page, room, text)
    item = messages(page, room).filter(has_text=text).last
    expect(item).to_have_attribute("data-seq", re.compile(r"\d+"))
    return item


def item(page, room: int, seq: int | str):
    """The list item of post ``seq`` in a room's pane."""
    return page.locator(f".room-pane[data-room-id='{room}'] .message[data-seq='{seq}']")


def action(page, post, name: str) -> None:
    """Open the post's actions menu and choose ``name`` (react, reply, edit, delete)."""
    post.hover()
    post.locator(".msg-actions-toggle").click()
    post.locator(f".msg-menu .msg-{name}").click()


def reload(page, room: int) -> None:
    """Reload the page; the room's pane opens again by itself (layout.js) and joins."""
    from playwright.sync_api import expect

    page.reload()
    pane = page.locator(f".room-pane[data-room-id='{room}']")
    expect(pane).to_have_attribute("data-state", "joined")
    expect(pane.locator(".history-status")).to_have_attribute(
        "data-state", re.compile("start|more")
    )


def api_post(page, room: int, body: dict) -> dict:
    """POST a message through the REST API with the page's session; returns the stored frame."""
    return page.evaluate(
        """async ([room, body]) => {
          const token = document.querySelector("input[name=csrfmiddlewaretoken]").value;
          const reply = await fetch(`/api/rooms/${room}/messages`, {method: "POST",
            headers: {"Content-Type": "application/json", "X-CSRFToken": token},
            body: JSON.stringify(body)});
          return await reply.json();
        }""",
        [room, body],
    )


def test_an_edit_shows_live_with_an_edited_mark_and_after_a_reload(browser, server):
    """Alice edits her post in place (Enter saves); Bob sees the new text and "(edited)" live."""
    from playwright.sync_api import expect

    room = server.rooms["Edits"]
    alice = open_chat(browser, server, "alice")
    bob = open_chat(browser, server, "bob")
    join(alice, room)
    join(bob, room)
    mine = post(alice, room, "I can spel")
    seq = mine.get_attribute("data-seq")
    expect(item(bob, room, seq).locator(".body")).to_have_text("I can spel")
    action(alice, mine, "edit")
    box = mine.locator(".msg-editor-input")
    expect(box).to_be_focused()
    expect(box).to_have_value("I can spel")
    box.fill("I can spell")
    shoot(alice, "edit.png")
    box.press("Enter")
    for page in (alice, bob):
        expect(item(page, room, seq).locator(".body")).to_have_text("I can spell")
        mark = item(page, room, seq).locator(".edited-mark")
        expect(mark).to_have_text("(edited)")
        expect(mark).to_have_attribute("title", re.compile(r"^Edited \S"))
    expect(mine.locator(".msg-editor")).to_have_count(0)
    # Escape cancels an edit and keeps the text.
    action(alice, mine, "edit")
    mine.locator(".msg-editor-input").fill("something else")
    mine.locator(".msg-editor-input").press("Escape")
    expect(mine.locator(".body")).to_have_text("I can spell")
    # Bob may not edit Alice's post: his menu has no Edit and no Delete.
    theirs = item(bob, room, seq)
    theirs.hover()
    theirs.locator(".msg-actions-toggle").click()
    expect(theirs.locator(".msg-menu button")).to_have_text(["React…", "Reply"])
    reload(bob, room)
    expect(item(bob, room, seq).locator(".body")).to_have_text("I can spell")
    expect(item(bob, room, seq).locator(".edited-mark")).to_have_text("(edited)")
    assert messages(bob, room).count() == 1
    alice.context.close()
    bob.context.close()


def test_a_deletion_leaves_a_tombstone_for_everyone_and_after_a_reload(browser, server):
    """Alice deletes her post after confirming; both see a tombstone with no text; staff: any."""
    from playwright.sync_api import expect

    room = server.rooms["Deletions"]
    alice = open_chat(browser, server, "alice")
    stella = open_chat(browser, server, "stella")
    join(alice, room)
    join(stella, room)
    mine = post(alice, room, "a secret I regret")
    other = post(alice, room, "rude words")
    first, second = mine.get_attribute("data-seq"), other.get_attribute("data-seq")
    action(alice, mine, "delete")
    dialog = alice.locator("dialog.confirm-delete")
    expect(dialog).to_be_visible()
    expect(dialog.locator(".dialog-cancel")).to_be_focused()
    dialog.locator(".dialog-cancel").click()  # cancelled: nothing happens
    expect(mine.locator(".body")).to_have_text("a secret I regret")
    action(alice, mine, "delete")
    alice.locator("dialog.confirm-delete .dialog-danger").click()
    for page in (alice, stella):
        tomb = item(page, room, first)
        expect(tomb).to_have_attribute("data-deleted", "true")
        expect(tomb.locator(".body")).to_have_text("This message was deleted.")
        expect(tomb).not_to_contain_text("secret")
        expect(tomb.locator(".msg-actions")).to_have_count(0)
    # Staff may delete anyone's post.
    action(stella, item(stella, room, second), "delete")
    stella.locator("dialog.confirm-delete .dialog-danger").click()
    expect(item(alice, room, second)).to_have_attribute("data-deleted", "true")
    reload(alice, room)
    for seq in (first, second):
        expect(item(alice, room, seq).locator(".body")).to_have_text("This message was deleted.")
    expect(messages(alice, room)).to_have_count(2)
    alice.context.close()
    stella.context.close()


def test_reactions_toggle_with_counts_and_names_in_two_browsers(browser, server):
    """Alice reacts from the picker, Bob by the chip: counts, pressed state, names; reload."""
    from playwright.sync_api import expect

    room = server.rooms["Reactions"]
    alice = open_chat(browser, server, "alice")
    bob = open_chat(browser, server, "bob")
    join(alice, room)
    join(bob, room)
    seq = post(bob, room, "Lunch at noon?").get_attribute("data-seq")
    action(alice, item(alice, room, seq), "react")
    alice.locator(".emoji-picker .emoji-choice", has_text="👍").click()
    chip = item(bob, room, seq).locator(".reaction[data-emoji='👍']")
    expect(chip.locator(".reaction-count")).to_have_text("1")
    expect(chip).to_have_attribute("aria-pressed", "false")
    expect(chip).to_have_attribute("aria-label", "alice reacted with 👍")
    chip.click()
    for page in (alice, bob):
        own = item(page, room, seq).locator(".reaction[data-emoji='👍']")
        expect(own.locator(".reaction-count")).to_have_text("2")
        expect(own).to_have_attribute("title", "alice, bob reacted with 👍")
    expect(chip).to_have_attribute("aria-pressed", "true")
    # Any emoji, pasted into the picker's field.
    action(bob, item(bob, room, seq), "react")
    bob.locator(".emoji-picker .emoji-input").fill("🦄")
    bob.locator(".emoji-picker .emoji-input").press("Enter")
    expect(
        item(alice, room, seq).locator(".reaction[data-emoji='🦄'] .reaction-count")
    ).to_have_text("1")
    shoot(alice, "reactions.png")
    # Alice takes hers back by clicking her pressed chip.
    alice_chip = item(alice, room, seq).locator(".reaction[data-emoji='👍']")
    expect(alice_chip).to_have_attribute("aria-pressed", "true")
    alice_chip.click()
    expect(chip.locator(".reaction-count")).to_have_text("1")
    expect(chip).to_have_attribute("aria-label", "bob reacted with 👍")
    reload(alice, room)
    again = item(alice, room, seq).locator(".reaction")
    expect(again).to_have_count(2)
    expect(again.first).to_have_attribute("aria-pressed", "false")
    expect(again.first.locator(".reaction-count")).to_have_text("1")
    alice.context.close()
    bob.context.close()


def test_a_reaction_by_keyboard_only(browser, server):
    """Tab to a post's ⋯ button, open it, choose React, pick an emoji: all with keys."""
    from playwright.sync_api import expect

    room = server.rooms["Keys"]
    alice = open_chat(browser, server, "alice")
    join(alice, room)
    seq = post(alice, room, "press the keys").get_attribute("data-seq")
    pane = alice.locator(f".room-pane[data-room-id='{room}']")
    pane.locator(".messages").focus()
    alice.keyboard.press("Tab")
    toggle = item(alice, room, seq).locator(".msg-actions-toggle")
    expect(toggle).to_be_focused()
    expect(toggle).to_have_css("opacity", "1")  # shown while focused
    alice.keyboard.press("Enter")
    expect(toggle).to_have_attribute("aria-expanded", "true")
    expect(pane.locator(".msg-menu .msg-react")).to_be_focused()
    alice.keyboard.press("Enter")
    expect(pane.locator(".emoji-choice").first).to_be_focused()
    alice.keyboard.press("Tab")  # the second quick emoji
    alice.keyboard.press("Enter")
    chip = item(alice, room, seq).locator(".reaction[data-emoji='❤️']")
    expect(chip).to_have_attribute("aria-pressed", "true")
    expect(toggle).to_be_focused()  # back where the picker was opened
    # Escape closes a menu and gives the focus back to its button.
    alice.keyboard.press("Enter")
    expect(pane.locator(".msg-menu")).to_be_visible()
    alice.keyboard.press("Escape")
    expect(pane.locator(".msg-menu")).to_have_count(0)
    expect(toggle).to_be_focused()
    # The chip toggles by keyboard too, and keeps the focus when redrawn.
    chip.focus()
    alice.keyboard.press("Enter")
    expect(chip).to_have_count(0)
    alice.context.close()


def test_up_arrow_in_an_empty_composer_edits_the_last_own_post(browser, server):
    """Like Slack: Up in the empty box opens the newest own post in the editor."""
    from playwright.sync_api import expect

    room = server.rooms["Arrow"]
    alice = open_chat(browser, server, "alice")
    bob = open_chat(browser, server, "bob")
    join(alice, room)
    join(bob, room)
    post(alice, room, "first of mine")
    last = post(alice, room, "last of mine")
    post(bob, room, "bob speaks after")
    expect(messages(alice, room)).to_have_count(3)
    box = alice.locator(f".room-pane[data-room-id='{room}'] .composer-input")
    box.fill("x")
    box.press("ArrowUp")  # not empty: nothing
    expect(alice.locator(".msg-editor")).to_have_count(0)
    box.fill("")
    box.press("ArrowUp")
    editor = last.locator(".msg-editor-input")
    expect(editor).to_be_focused()
    editor.fill("last of mine, fixed")
    editor.press("Enter")
    seq = last.get_attribute("data-seq")
    expect(item(bob, room, seq).locator(".body")).to_have_text("last of mine, fixed")
    alice.context.close()
    bob.context.close()


def test_a_reply_quotes_its_post_and_jumping_to_an_old_one_loads_history(browser, server):
    """Reply mode in the composer; a quote of a post older than the first page jumps back to it."""
    from playwright.sync_api import expect

    room = server.create_room("Replies")
    server.testkit("post", room_id=room, texts=[f"old {i}" for i in range(1, 121)], username="bob")
    alice = open_chat(browser, server, "alice")
    alice.reload()  # the room list is rendered with the page
    join(alice, room)
    bob = open_chat(browser, server, "bob")
    join(bob, room)
    # Bob answers post 5 (not on anyone's first page) through the REST API.
    api_post(bob, room, {"message": "answering the fifth", "reply_to": 5})
    reply = messages(alice, room).filter(has=alice.locator(".body", has_text="answering the fifth"))
    quote = reply.locator(".reply-quote")
    expect(quote).to_have_text("bob old 5")  # read with one history request
    # Alice replies to Bob's reply from the composer.
    action(alice, reply, "reply")
    banner = alice.locator(f".room-pane[data-room-id='{room}'] .reply-banner")
    expect(banner).to_have_text(re.compile(r"Replying to bob: answering the fifth"))
    box = alice.locator(f".room-pane[data-room-id='{room}'] .composer-input")
    expect(box).to_be_focused()
    box.press("Escape")
    expect(banner).to_be_hidden()
    action(alice, reply, "reply")
    say(alice, room, "and I answer you")
    expect(banner).to_be_hidden()
    answer = messages(alice, room).filter(has_text="and I answer you")
    expect(answer).to_have_attribute("data-seq", re.compile(r"\d+"))
    expect(answer.locator(".reply-quote")).to_have_text("bob answering the fifth")
    bob_answer = messages(bob, room).filter(has_text="and I answer you")
    expect(bob_answer.locator(".reply-quote")).to_have_text("bob answering the fifth")
    shoot(alice, "reply.png")
    expect(messages(alice, room).first).not_to_have_attribute("data-seq", "5")
    quote.click()
    target = item(alice, room, 5)
    expect(target).to_be_focused(timeout=10_000)
    expect(target).to_be_in_viewport()
    expect(target).to_have_class(re.compile(r"\bjump-target\b"))
    seqs = [
        int(s) for s in messages(alice, room).evaluate_all("els => els.map(e => e.dataset.seq)")
    ]
    assert seqs[:3] == [1, 2, 3] or seqs[0] <= 5  # loaded back to it, in order
    assert seqs == sorted(set(seqs))
    alice.context.close()
    bob.context.close()


def test_changes_missed_while_disconnected_are_applied_on_resume(browser, server, proxy):
    """Alice's connection drops while Bob edits, reacts, deletes and posts: all applied, once."""
    from playwright.sync_api import expect

    room = server.rooms["Resume"]
    alice = open_chat(browser, proxy, "alice")  # page and socket go through the proxy
    bob = open_chat(browser, server, "bob")
    join(alice, room)
    join(bob, room)
    edited = post(bob, room, "typo hree").get_attribute("data-seq")
    gone = post(bob, room, "to be deleted").get_attribute("data-seq")
    liked = post(alice, room, "like me").get_attribute("data-seq")
    expect(messages(alice, room)).to_have_count(3)
    proxy.cut("refuse")
    expect(alice.locator("#conn-state")).to_have_attribute("data-state", "reconnecting")
    action(bob, item(bob, room, edited), "edit")
    item(bob, room, edited).locator(".msg-editor-input").fill("typo here")
    item(bob, room, edited).locator(".msg-editor-input").press("Enter")
    expect(item(bob, room, edited).locator(".edited-mark")).to_be_visible()
    action(bob, item(bob, room, liked), "react")
    bob.locator(".emoji-picker .emoji-choice", has_text="🎉").click()
    expect(item(bob, room, liked).locator(".reaction")).to_have_count(1)
    action(bob, item(bob, room, gone), "delete")
    bob.locator("dialog.confirm-delete .dialog-danger").click()
    expect(item(bob, room, gone)).to_have_attribute("data-deleted", "true")
    post(bob, room, "while alice was away")
    proxy.restore()
    expect(alice.locator("#conn-state")).to_have_attribute(
        "data-state", "connected", timeout=15_000
    )
    expect(item(alice, room, edited).locator(".body")).to_have_text("typo here")
    expect(item(alice, room, edited).locator(".edited-mark")).to_be_visible()
    expect(
        item(alice, room, liked).locator(".reaction[data-emoji='🎉'] .reaction-count")
    ).to_have_text("1")
    expect(item(alice, room, gone)).to_have_attribute("data-deleted", "true")
    expect(messages(alice, room)).to_have_count(4)
    bodies = messages(alice, room).locator(".body").all_inner_texts()
    assert bodies == ["typo here", "This message was deleted.", "like me", "while alice was away"]
    # The resume asked from the highest seq received, changes included: a second drop and
    # resume replays nothing twice and nothing shows twice.
    proxy.cut("refuse")
    expect(alice.locator("#conn-state")).to_have_attribute("data-state", "reconnecting")
    proxy.restore()
    expect(alice.locator("#conn-state")).to_have_attribute(
        "data-state", "connected", timeout=15_000
    )
    expect(alice.locator(f".room-pane[data-room-id='{room}']")).to_have_attribute(
        "data-state", "joined"
    )
    assert messages(alice, room).locator(".body").all_inner_texts() == bodies
    # Changes are never unread: at most the one post Alice missed is (if her page had no focus).
    badge = alice.locator(f".room-toggle[data-room-id='{room}'] .unread")
    assert badge.is_hidden() or badge.inner_text() == "1", badge.inner_text()
    alice.context.close()
    bob.context.close()


def test_post_actions_on_a_phone(browser, server):
    """On a phone the ⋯ button is always shown, 44 px or more, and a tap opens the actions."""
    from playwright.sync_api import expect

    room = server.rooms["Phone"]
    alice = open_chat(browser, server, "alice", viewport=PHONE, has_touch=True, is_mobile=True)
    alice.tap(f".room-toggle[data-room-id='{room}']")
    pane = alice.locator(f".room-pane[data-room-id='{room}']")
    expect(pane).to_have_attribute("data-state", "joined")
    mine = post(alice, room, "hello from my phone")
    toggle = mine.locator(".msg-actions-toggle")
    expect(toggle).to_have_css("opacity", "1")
    box = toggle.bounding_box()
    assert box is not None and box["width"] >= 44 and box["height"] >= 44, box
    toggle.tap()
    menu = mine.locator(".msg-menu")
    expect(menu.locator("button")).to_have_text(["React…", "Reply", "Edit", "Delete…"])
    for button in menu.locator("button").all():
        assert button.bounding_box()["height"] >= 44
    menu.locator(".msg-react").tap()
    mine.locator(".emoji-choice", has_text="😂").tap()
    chip = mine.locator(".reaction[data-emoji='😂']")
    expect(chip).to_have_attribute("aria-pressed", "true")
    assert chip.bounding_box()["height"] >= 44
    alice.context.close()
