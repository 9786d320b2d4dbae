"""Formatted text: a safe Markdown subset rendered once, when a message is stored.

markdown-it-py parses the text with raw HTML off; nh3 (ammonia) then keeps only
an allow-list of tags, attributes and URL schemes, so the HTML a client
receives is safe even if the parser let something through. A text without
formatting renders to "": clients show it as plain text, and it costs nothing
on the wire.

The subset is the one a chat needs: emphasis, strikethrough, inline code,
code blocks, block quotes, lists and links. Headings, thematic breaks and
tables are off (``# text`` stays text: a chat line is not a document), images
show as a link to the image (``!`` then the alt text), and bare URLs are not
linked here (that needs linkify-it-py): the browser links them in text, as it
does for plain messages.
"""

from __future__ import annotations

import re

import nh3
from markdown_it import MarkdownIt
from markdown_it.token import Token

ALLOWED_TAGS = frozenset(
    {"p", "br", "em", "strong", "del", "code", "pre", "blockquote", "ul", "ol", "li", "a"}
)
# The only attributes that survive: a link's target (and the rel and target the
# sanitizer sets on every link), and an ordered list's first number, so
# "3. step" still reads 3.
ALLOWED_ATTRIBUTES = {"a": frozenset({"href"}), "ol": frozenset({"start"})}
URL_SCHEMES = frozenset({"http", "https", "mailto"})
LINK_REL = "noopener noreferrer nofollow"

# Rules of the CommonMark preset turned off: no raw HTML, no images, no
# headings or thematic breaks, and entities stay as typed ("&amp;" reads &amp;).
_DISABLED = ["html_block", "html_inline", "image", "heading", "lheading", "hr", "entity"]
_PLAIN_BLOCKS = frozenset({"paragraph_open", "paragraph_close", "inline"})
_PLAIN_INLINE = frozenset({"text", "softbreak", "hardbreak"})
# A backslash escape (or a backslash line break) changes what the text shows.
_ESCAPE_RE = re.compile(r"\\[!-/:-@\[-`{-~\n]")
_DIGITS_RE = re.compile(r"[0-9]{1,9}")


def _parser() -> MarkdownIt:
    """The Markdown parser of the subset: CommonMark, raw HTML off, newlines are line breaks."""
    md = MarkdownIt("commonmark", {"html": False, "breaks": True, "linkify": False})
    md.enable("strikethrough")
    md.disable(_DISABLED)
    return md


def _attribute_filter(tag: str, attribute: str, value: str) -> str | None:
    """Keep ``ol[start]`` only as a plain number; every other allowed attribute as it is."""
    if tag == "ol" and attribute == "start":
        return value if _DIGITS_RE.fullmatch(value) else None
    return value


_md = _parser()
_cleaner = nh3.Cleaner(
    tags=set(ALLOWED_TAGS),
    clean_content_tags={"script", "style"},
    # "*": no attribute on every tag (ammonia's default would allow lang and title anywhere).
    attributes={"*": set(), **{tag: set(names) for tag, names in ALLOWED_ATTRIBUTES.items()}},
    attribute_filter=_attribute_filter,
    strip_comments=True,
    link_rel=LINK_REL,
    set_tag_attribute_values={"a": {"target": "_blank"}},
    url_schemes=set(URL_SCHEMES),
    url_relative="deny",
)


def _is_plain(tokens: list[Token], text: str) -> bool:
    """True when the rendering would only be the text itself in paragraphs with line breaks."""
    for token in tokens:
        if token.type not in _PLAIN_BLOCKS:
            return False
        if token.children and any(child.type not in _PLAIN_INLINE for child in token.children):
            return False
    return not _ESCAPE_RE.search(text)


def _strike_as_del(tokens: list[Token]) -> None:
    """Render ``~~text~~`` as <del> (markdown-it writes <s>, which the allow-list leaves out)."""
    for token in tokens:
        for child in token.children or ():
            if child.type in ("s_open", "s_close"):
                child.tag = "del"


def render(text: str) -> str:
    """``text`` as sanitized HTML, or "" when it has no formatting (show it as plain text)."""
    env: dict = {}
    tokens = _md.parse(text, env)
    if _is_plain(tokens, text):
        return ""
    _strike_as_del(tokens)
    return _cleaner.clean(_md.renderer.render(tokens, _md.options, env)).strip()
