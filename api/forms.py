"""The form of the token pages."""

from django import forms

from api.models import ApiToken


class TokenCreateForm(forms.Form):
    """The name of a new token: what it is for."""

    name = forms.CharField(
        label="Name",
        max_length=ApiToken._meta.get_field("name").max_length,
        help_text="What the token is for, e.g. “deploy bot”.",
    )
