"""Admin pages that show a new secret once: an API token, an invitation link.

``save_model`` creates the object through its service, which returns the
secret; ``remember`` holds it for that request only (stored nowhere, never in
a message cookie), and ``shown_once`` renders the page that shows it, with
``Cache-Control: no-store``. The templates extend ``admin/chat/shown_once.html``.
"""

from __future__ import annotations

import weakref
from typing import Any

from django.db.models import Model
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils.functional import Promise

_secrets: weakref.WeakKeyDictionary[HttpRequest, str] = weakref.WeakKeyDictionary()


def remember(request: HttpRequest, secret: str) -> None:
    """Keep ``secret`` for this request's response page, and nowhere else."""
    _secrets[request] = secret


def shown_once(
    request: HttpRequest,
    *,
    each_context: dict[str, Any],
    template: str,
    title: str | Promise,
    obj: Model,
) -> TemplateResponse:
    """The page that shows the secret remembered for ``request``, once and uncached."""
    context = {
        **each_context,
        "title": title,
        "opts": obj._meta,
        "object": obj,
        "secret": _secrets.pop(request),
    }
    response = TemplateResponse(request, template, context)
    response["Cache-Control"] = "no-store"
    return response
