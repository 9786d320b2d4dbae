"""Template context for every page: whether anyone may sign up without an invitation."""

from django.conf import settings
from django.http import HttpRequest


def signup(request: HttpRequest) -> dict[str, bool]:
    """``open_signup``: the login page offers /signup/ when CHAT_OPEN_SIGNUP is on."""
    return {"open_signup": settings.CHAT_OPEN_SIGNUP}
