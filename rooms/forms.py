from django import forms
from django.conf import settings
from django.utils.html import format_html

from videochat.text import validate_single_line

from .models import Room


class RoomForm(forms.ModelForm):
    class Meta:
        model = Room
        fields = ["name", "slug", "capacity", "guest_access"]
        labels = {"slug": "Address", "guest_access": "Guests may join by invite link"}
        # Help texts are rendered as HTML (form_fields.html: Django's password
        # help is a list): the literal "<address>" must be escaped, or the
        # browser swallows it as an unknown tag.
        help_texts = {
            "slug": format_html(
                "Letters, digits and dashes; the room's URL is {}. Empty: made from the name.",
                "/r/<address>/",
            )
        }

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


class JoinLinkForm(forms.Form):
    """``/join/``: paste an invite link (or its code) to get to the room."""

    link = forms.CharField(
        max_length=500,
        strip=True,
        label="Invite link or code",
        help_text="The link someone sent you, like https://huddle.example/i/AbC123…/",
    )

    def clean_link(self) -> str:
        from videochat.errors import InviteInvalid

        from .invites import token_from_link
        from .services import invite_resolve

        token = token_from_link(self.cleaned_data["link"])
        if token is None:
            raise forms.ValidationError(
                "That is not an invite link: it looks like https://…/i/<code>/."
            )
        try:
            invite_resolve(token=token)
        except InviteInvalid as exc:
            raise forms.ValidationError(exc.message) from exc
        return token


class RoomSettingsForm(forms.Form):
    """The room settings page (owner and moderators): rooms.views.room_settings."""

    name = forms.CharField(max_length=80, strip=True, validators=[validate_single_line])
    guest_access = forms.BooleanField(
        required=False,
        label="Guests may join by invite link",
        help_text="People without an account join with a name only. Guests already in stay.",
    )
    locked = forms.BooleanField(
        required=False,
        label="Lock the room",
        help_text="No new people may join; those already in stay.",
    )
    lobby_enabled = forms.BooleanField(
        required=False,
        label="Lobby",
        help_text="Newcomers wait until the owner or a moderator admits them.",
    )
    password = forms.CharField(
        required=False,
        min_length=4,
        max_length=128,
        strip=False,
        label="New room password",
        help_text="4 to 128 characters, asked of everyone joining the call. Empty: unchanged.",
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )
    clear_password = forms.BooleanField(required=False, label="Remove the room password")

    def clean_name(self) -> str:
        name = self.cleaned_data["name"]
        if not name:
            raise forms.ValidationError("The room needs a name.")
        return name

    def clean(self) -> dict:
        data = super().clean() or {}
        if data.get("password") and data.get("clear_password"):
            raise forms.ValidationError("Set a new password or remove it, not both.")
        return data
