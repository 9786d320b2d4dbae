"""Placeholder on the changes branch only; the markup branch brings the real renderer."""


def render(text: str) -> str:
    return ""
