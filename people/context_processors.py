"""Template context for every page: whether anyone may sign up without an invitation."""

from django.http import HttpRequest

from chat import conf


def signup(request: HttpRequest) -> dict[str, bool]:
    """``open_signup``: the login page offers /signup/ when CHAT_OPEN_SIGNUP is on."""
    return {"open_signup": conf.CHAT_OPEN_SIGNUP}
