"""``{% multichat %}``: the chat client mounted in any page of a site that embeds the chat.

    {% load multichat %}
    ...
    {% multichat %}

renders the whole client (room list, rooms, composer) with its stylesheet, translations and
scripts for the page's logged-in user, and a sign-in link for anyone else (docs/embedding.md).
One per page: the client's elements have fixed ids.
"""

from typing import Any

from django import template
from django.conf import settings
from django.shortcuts import resolve_url
from django.template.context import Context
from django.utils.http import urlencode

from chat import permissions

register = template.Library()


@register.inclusion_tag("chat/mount.html", takes_context=True)
def multichat(context: Context) -> dict[str, Any]:
    """The client for the request's user, or the sign-in link when there is none."""
    from chat.views import chat_config  # the views import models and the API's selectors

    request = context["request"]
    user = request.user
    if not permissions.is_chat_user(user):
        next_page = urlencode({"next": request.get_full_path()})
        return {"login_url": f"{resolve_url(settings.LOGIN_URL)}?{next_page}"}
    return {
        "chat_config": chat_config(user),
        "chat_embedded": True,
        "request": request,
        "user": user,
        "csrf_token": context.get("csrf_token"),
    }
