from django import forms
from django.conf import settings

from videochat.text import validate_single_line

from .models import Room


class RoomForm(forms.ModelForm):
    class Meta:
        model = Room
        fields = ["name", "slug", "capacity", "guest_access"]
        labels = {"slug": "Address", "guest_access": "Guests may join by invite link"}
        help_texts = {"slug": "Letters, digits and dashes; the room's URL is /r/<address>/."}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["slug"].required = False
        self.fields["capacity"].initial = settings.ROOM_DEFAULT_CAPACITY
        # A room name is one line of plain text: no CR/LF, controls or bidi overrides.
        self.fields["name"].validators.append(validate_single_line)

    def clean_slug(self) -> str:
        from .services import suggest_slug

        slug = self.cleaned_data.get("slug") or suggest_slug(self.cleaned_data.get("name", ""))
        if not slug:
            raise forms.ValidationError("Choose an address made of letters or digits.")
        if Room.objects.filter(slug=slug).exists():
            raise forms.ValidationError("A room with this address already exists.")
        return slug


class GuestJoinForm(forms.Form):
    display_name = forms.CharField(
        max_length=40, strip=True, label="Your name", validators=[validate_single_line]
    )

    def clean_display_name(self) -> str:
        name = self.cleaned_data["display_name"]
        if not name:
            raise forms.ValidationError("Please enter a name.")
        return name
