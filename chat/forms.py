"""Forms of the admin's broadcast action."""

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from chat.models import MsgType


class BroadcastForm(forms.Form):
    """The text and level of a staff message posted to several rooms at once."""

    msg_type = forms.TypedChoiceField(
        label=_("Level"),
        coerce=int,
        choices=[
            (MsgType.WARNING, _("Warning")),
            (MsgType.ALERT, _("Alert")),
            (MsgType.MUTED, _("Muted note")),
        ],
    )

    def __init__(self, *args: Any, max_length: int, **kwargs: Any) -> None:
        """Django's form arguments, and the longest text a message may have."""
        super().__init__(*args, **kwargs)
        self.fields["text"] = forms.CharField(
            label=_("Message"), max_length=max_length, widget=forms.Textarea(attrs={"rows": 3})
        )
