"""Formatted text: the Markdown subset, the sanitizer's allow-list, and rendering once per post."""

from html.parser import HTMLParser

import pytest
from channels.db import database_sync_to_async
from django.test import Client

from chat import markup, services
from chat.markup import ALLOWED_ATTRIBUTES, ALLOWED_TAGS, LINK_REL, URL_SCHEMES, render
from chat.models import Message
from chat.tests.xss_corpus import XSS_VECTORS
from testkit.factories import bearer

LINK = f'target="_blank" rel="{LINK_REL}"'


class _Elements(HTMLParser):
    """Every start tag of an HTML fragment with its attributes, as a tokenizer sees them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.comments: list[str] = []
        self.declarations: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))

    def handle_comment(self, data: str) -> None:
        self.comments.append(data)

    def handle_decl(self, decl: str) -> None:
        self.declarations.append(decl)

    def unknown_decl(self, data: str) -> None:
        self.declarations.append(data)


def _violations(html: str) -> list[str]:
    """What in ``html`` is outside the allow-list: tags, attributes, schemes, link rel/target."""
    parser = _Elements()
    parser.feed(html)
    parser.close()
    found = [f"comment {c!r}" for c in parser.comments]
    found += [f"declaration {d!r}" for d in parser.declarations]
    for tag, attrs in parser.elements:
        if tag not in ALLOWED_TAGS:
            found.append(f"tag <{tag}>")
            continue
        extra = {"target", "rel"} if tag == "a" else set()
        for name in attrs.keys() - ALLOWED_ATTRIBUTES.get(tag, set()) - extra:
            found.append(f"attribute {tag}[{name}]")
        if tag == "a":
            if (attrs.get("target"), attrs.get("rel")) != ("_blank", LINK_REL):
                found.append(f"link without target/rel: {attrs}")
            href = attrs.get("href")
            if href is not None:
                scheme = href.split(":", 1)[0].strip().lower() if ":" in href else ""
                if scheme not in URL_SCHEMES:
                    found.append(f"href {href!r}")
        if tag == "ol" and attrs.get("start") is not None and not attrs["start"].isdigit():
            found.append(f"ol[start={attrs['start']!r}]")
    return found


@pytest.mark.parametrize(
    ("text", "html"),
    [
        ("*em* _em_", "<p><em>em</em> <em>em</em></p>"),
        ("**strong** __strong__", "<p><strong>strong</strong> <strong>strong</strong></p>"),
        ("~~gone~~", "<p><del>gone</del></p>"),
        ("use `a < b`", "<p>use <code>a &lt; b</code></p>"),
        ("```py\nif a < b:\n    pass\n```", "<pre><code>if a &lt; b:\n    pass\n</code></pre>"),
        ("    indented()", "<pre><code>indented()\n</code></pre>"),
        ("> quoted\n\nanswer", "<blockquote>\n<p>quoted</p>\n</blockquote>\n<p>answer</p>"),
        ("- one\n- two", "<ul>\n<li>one</li>\n<li>two</li>\n</ul>"),
        ("* one\n* two", "<ul>\n<li>one</li>\n<li>two</li>\n</ul>"),
        ("1. one\n2. two", "<ol>\n<li>one</li>\n<li>two</li>\n</ol>"),
        ("3. three", '<ol start="3">\n<li>three</li>\n</ol>'),
        (
            "[docs](https://example.com/a?b=1)",
            f'<p><a href="https://example.com/a?b=1" {LINK}>docs</a></p>',
        ),
        (
            "[mail](mailto:ann@example.com)",
            f'<p><a href="mailto:ann@example.com" {LINK}>mail</a></p>',
        ),
        (
            "<https://example.com>",
            f'<p><a href="https://example.com" {LINK}>https://example.com</a></p>',
        ),
        (
            '[t](https://example.com "a title")',
            f'<p><a href="https://example.com" {LINK}>t</a></p>',
        ),
        (
            "[ref]\n\n[ref]: https://example.com",
            f'<p><a href="https://example.com" {LINK}>ref</a></p>',
        ),
        ("**hi** @bob", "<p><strong>hi</strong> @bob</p>"),
        ("*a*\nb", "<p><em>a</em><br>\nb</p>"),
    ],
)
def test_each_construct_of_the_subset_renders(text, html):
    """Emphasis, strikethrough, code, code blocks, quotes, lists and links render as HTML."""
    assert render(text) == html


@pytest.mark.parametrize(
    ("text", "html"),
    [
        ("# Not a heading", ""),
        ("## also **not**", "<p>## also <strong>not</strong></p>"),
        ("title\n===\n**x**", "<p>title<br>\n===<br>\n<strong>x</strong></p>"),
        ("---", ""),
        (
            "![a cat](https://example.com/cat.png)",
            f'<p>!<a href="https://example.com/cat.png" {LINK}>a cat</a></p>',
        ),
        ("<b>raw</b> *x*", "<p>&lt;b&gt;raw&lt;/b&gt; <em>x</em></p>"),
        ("| a | b |\n|---|---|\n| 1 | 2 |", ""),
        ("[rel](/admin/) *x*", f"<p><a {LINK}>rel</a> <em>x</em></p>"),
    ],
)
def test_headings_images_raw_html_and_tables_are_off(text, html):
    """Headings, tables stay text; an image is a link; raw HTML is text; no relative href."""
    assert render(text) == html


@pytest.mark.parametrize(
    "text",
    [
        "hello",
        "hi @bob, see https://example.com/x_y_z and www.example.org",
        "two\nlines\n\nand a paragraph",
        "snake_case_name and 2 * 3 * 4",
        "a & b < c > d \"quoted\" 'single'",
        "&amp; stays as typed",
        "  leading spaces",
        "# not a heading",
        "[ref]: https://example.com",
        "[x](javascript:alert(1))",
        "",
    ],
)
def test_text_without_formatting_renders_to_nothing(text):
    """Plain text (bare URLs and mentions included) renders to "": clients show the text itself."""
    assert render(text) == ""


def test_escapes_count_as_formatting():
    """A backslash escape changes what the text shows, so the text is not plain."""
    assert render(r"2 \* 3") == "<p>2 * 3</p>"


def test_the_corpus_has_at_least_forty_vectors():
    """The XSS corpus covers the brief's list; it stays large enough to mean something."""
    assert len(XSS_VECTORS) >= 40


@pytest.mark.parametrize("vector", XSS_VECTORS)
def test_xss_vector_renders_only_allowed_tags_attributes_and_schemes(vector):
    """Each hostile text renders (parsed as HTML) to allowed tags, attributes and schemes only."""
    html = render(vector)
    assert _violations(html) == [], html
    # Hostile markup is escaped text or gone (its words may show, as text, never as a tag).
    lowered = html.lower()
    for needle in ("<script", "<img", "<svg", "<math", "<iframe", "<style", "<!--"):
        assert needle not in lowered, html


def test_the_violation_check_catches_what_it_looks_for():
    """The allow-list check itself finds a forbidden tag, attribute, scheme and a bare link."""
    assert _violations('<p onclick="x">a</p>') == ["attribute p[onclick]"]
    assert _violations("<img src=x>") == ["tag <img>"]
    assert _violations(f'<a href=" JavaScript:x" {LINK}>a</a>') == ["href ' JavaScript:x'"]
    assert _violations('<a href="https://x">a</a>')[0].startswith("link without target/rel")
    assert _violations("<!-- c -->") == ["comment ' c '"]


pytestmark_db = pytest.mark.django_db(transaction=True)


@pytestmark_db
def test_rest_post_and_history_carry_html_only_for_formatted_text(alice, room):
    """A REST post and history carry html; a plain message has none; the schema says so."""
    client = bearer(alice)
    url = f"/api/rooms/{room.pk}/messages"
    formatted = client.post(url, {"message": "**hi**"}, content_type="application/json")
    plain = client.post(url, {"message": "hi"}, content_type="application/json")
    assert formatted.status_code == plain.status_code == 201
    assert formatted.json()["html"] == "<p><strong>hi</strong></p>"
    assert "html" not in plain.json()
    page = client.get(url).json()["messages"]
    assert [m.get("html") for m in page] == ["<p><strong>hi</strong></p>", None]
    schema = Client().get("/api/openapi.json").json()
    field = schema["components"]["schemas"]["MessageEvent"]["properties"]["html"]
    assert (field["type"], field["default"]) == ("string", "")


@pytestmark_db
def test_a_deleted_message_carries_no_html(alice, room):
    """A tombstone has neither text nor html."""
    message = services.message_send(user=alice, room_id=room.pk, text="**secret**")
    assert Message.objects.get(pk=message.pk).html == "<p><strong>secret</strong></p>"
    services.message_delete(user=alice, room_id=room.pk, seq=message.seq)
    assert Message.objects.get(pk=message.pk).html == ""
    page = bearer(alice).get(f"/api/rooms/{room.pk}/messages").json()["messages"]
    assert page[0]["deleted"] is True
    assert "html" not in page[0]
    assert page[0]["message"] == ""


@pytestmark_db
async def test_a_post_is_rendered_once_not_per_recipient(connect, alice, bob, room, monkeypatch):
    """One post to a room with several sockets calls render once; every socket gets the html."""
    calls: list[str] = []
    original = markup.render

    def counting(text: str) -> str:
        calls.append(text)
        return original(text)

    monkeypatch.setattr(markup, "render", counting)
    sockets = [await connect(alice), await connect(bob), await connect(bob), await connect(alice)]
    for sock in sockets:
        await sock.join(room.pk)
    await sockets[0].send({"command": "send", "room": room.pk, "message": "see `code`"})
    frames = [await sock.recv() for sock in sockets]
    assert {f["html"] for f in frames} == {"<p>see <code>code</code></p>"}
    assert {f["seq"] for f in frames} == {1}
    assert calls == ["see `code`"]
    stored = await database_sync_to_async(Message.objects.get)(room=room, seq=1)
    assert stored.html == "<p>see <code>code</code></p>"
