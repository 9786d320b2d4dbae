"""The form of the token pages."""

from django import forms
from django.utils.translation import gettext_lazy as _

from api.models import ApiToken


class TokenCreateForm(forms.Form):
    """The name of a new token: what it is for."""

    name = forms.CharField(
        label=_("Name"),
        max_length=ApiToken._meta.get_field("name").max_length,
        help_text=_("What the token is for, e.g. “deploy bot”."),
    )
