"""Template filters for translated pages."""

from datetime import timedelta

from django import template
from django.utils import timezone
from django.utils.timesince import timeuntil

register = template.Library()


@register.filter
def duration(value: timedelta | None) -> str:
    """A span of time in words of the page's language, e.g. "15 minutes" or "15 Minuten"."""
    if not value:
        return ""
    now = timezone.now()
    return timeuntil(now + value, now)
