from django import forms
from django.conf import settings

from videochat.text import validate_single_line

from .models import EVENTS
from .urlsafety import UnsafeURL, url_check


class WebhookForm(forms.Form):
    url = forms.CharField(
        label="Receiver URL",
        max_length=500,
        help_text="An https:// (or http://) address on the public internet.",
        validators=[validate_single_line],
    )
    events = forms.MultipleChoiceField(
        choices=EVENTS, widget=forms.CheckboxSelectMultiple, label="Send these events"
    )

    def clean_url(self) -> str:
        url = self.cleaned_data["url"].strip()
        try:
            url_check(url=url, allow_private=settings.WEBHOOK_ALLOW_PRIVATE)
        except UnsafeURL as exc:
            raise forms.ValidationError(exc.message, code=exc.code) from exc
        return url
