"""Default avatars: initials on a colour derived from the username, stable everywhere.

The colour is picked from a fixed palette by a hash of the username
(SHA-256, not Python's per-process ``hash``), so every process, every page
load and the REST API agree. Every colour is dark enough for white text at
WCAG AA (contrast of at least 4.5:1; chat/tests/test_people_profiles.py checks).
"""

from __future__ import annotations

import hashlib

PALETTE = (
    "#b91c1c",  # red
    "#c2410c",  # orange
    "#a16207",  # amber
    "#4d7c0f",  # lime
    "#15803d",  # green
    "#0f766e",  # teal
    "#0369a1",  # sky
    "#1d4ed8",  # blue
    "#4338ca",  # indigo
    "#6d28d9",  # violet
    "#a21caf",  # fuchsia
    "#be185d",  # pink
    "#475569",  # slate
)


def color_for(username: str) -> str:
    """The avatar colour of ``username``: the same for the same name, in every process."""
    digest = hashlib.sha256(username.encode("utf-8", "surrogatepass")).digest()
    return PALETTE[int.from_bytes(digest[:4], "big") % len(PALETTE)]


def initials(name: str) -> str:
    """One or two capital letters for ``name``: the first letters of its first two words."""
    words = [word for word in name.replace("_", " ").replace(".", " ").split() if word]
    if not words:
        return "?"
    letters = words[0][0] + (words[1][0] if len(words) > 1 else "")
    return letters.upper()
