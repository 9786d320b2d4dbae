"""Forms of the sign-up page and the staff's invitation page."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth import get_user_model, password_validation
from django.utils.translation import gettext_lazy as _

from people.models import Invitation


class SignupForm(forms.Form):
    """A username (free, and valid as Django's), and a password that passes the validators."""

    username = forms.CharField(
        label=_("Username"),
        max_length=150,
        help_text=_("Letters, digits and @ . + - _ only; others see it and mention you with it."),
        widget=forms.TextInput(attrs={"autocomplete": "username", "autocapitalize": "none"}),
    )
    password1 = forms.CharField(
        label=_("Password"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=password_validation.password_validators_help_text_html(),
    )
    password2 = forms.CharField(
        label=_("Password again"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def clean_username(self) -> str:
        """A username that Django accepts and no account has yet."""
        User = get_user_model()
        username: str = User.normalize_username(self.cleaned_data["username"])
        for validator in User._meta.get_field("username").validators:
            validator(username)
        if User.objects.filter(username__iexact=username).exists():
            raise forms.ValidationError(_("That username is taken. Pick another one."))
        return username

    def clean(self) -> dict[str, Any]:
        """The two passwords match, and pass the configured password validators."""
        cleaned: dict[str, Any] = super().clean() or {}
        first, second = cleaned.get("password1"), cleaned.get("password2")
        if first and second and first != second:
            self.add_error("password2", _("The two passwords differ. Type the same one twice."))
        elif first:
            user = get_user_model()(username=cleaned.get("username", ""))
            try:
                password_validation.validate_password(first, user)
            except forms.ValidationError as exc:
                self.add_error("password1", exc)
        return cleaned


class InvitationForm(forms.Form):
    """How many people a new link signs up, for how many days, and a note."""

    max_uses = forms.IntegerField(
        label=_("Uses"),
        min_value=1,
        max_value=10000,
        initial=1,
        help_text=_("How many people."),
    )
    expires_days = forms.IntegerField(
        label=_("Expires after (days)"),
        min_value=0,
        max_value=365,
        initial=7,
        help_text=_("0: never."),
    )
    note = forms.CharField(
        label=_("Note"),
        required=False,
        max_length=Invitation._meta.get_field("note").max_length,
        help_text=_("Who or what the link is for."),
    )
