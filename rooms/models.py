import secrets
from datetime import timedelta

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone


def new_invite_token() -> str:
    # 192 bits from the OS CSPRNG: unguessable, URL-safe.
    return secrets.token_urlsafe(24)


class Room(models.Model):
    slug = models.SlugField(max_length=50, unique=True)
    name = models.CharField(max_length=80)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="owned_rooms"
    )
    capacity = models.PositiveSmallIntegerField(
        default=settings.ROOM_DEFAULT_CAPACITY,
        validators=[MinValueValidator(2), MaxValueValidator(settings.ROOM_MAX_CAPACITY)],
        help_text="Most people in the call at once (a mesh works well up to about 6).",
    )
    guest_access = models.BooleanField(
        default=False, help_text="People without an account may join by invite link."
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.slug})"


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    MODERATOR = "moderator", "Moderator"
    PARTICIPANT = "participant", "Participant"
    GUEST = "guest", "Guest"


class Membership(models.Model):
    """A person's place in a room: an account, or a guest who came by invite."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="memberships",
    )
    display_name = models.CharField(max_length=40)
    role = models.CharField(max_length=12, choices=Role.choices, default=Role.PARTICIPANT)
    joined_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["joined_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["room", "user"],
                condition=models.Q(user__isnull=False),
                name="one_membership_per_user_per_room",
            )
        ]

    def __str__(self) -> str:
        return f"{self.display_name} in {self.room.slug} ({self.role})"

    @property
    def is_guest(self) -> bool:
        return self.user_id is None


def default_invite_expiry():
    return timezone.now() + timedelta(days=settings.INVITE_TTL_DAYS)


class Invite(models.Model):
    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="invites")
    token = models.CharField(max_length=64, unique=True, default=new_invite_token)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(default=default_invite_expiry)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"invite to {self.room.slug}"

    def is_usable(self, *, now=None) -> bool:
        now = now or timezone.now()
        return self.revoked_at is None and self.expires_at > now
