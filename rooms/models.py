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
        default=True, help_text="People without an account may join by invite link."
    )
    created_at = models.DateTimeField(default=timezone.now)
    # Moderation: who may still come in (see rooms/admission.py).
    locked = models.BooleanField(default=False, help_text="No new people may join the call.")
    password_hash = models.CharField(
        max_length=128, blank=True, default="", help_text="Set from the call; empty: none."
    )
    lobby_enabled = models.BooleanField(
        default=False, help_text="Newcomers knock and a moderator admits them."
    )

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
    joined_from = models.GenericIPAddressField(
        null=True, blank=True, help_text="The address a guest joined from (for a guest's ban)."
    )

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


class Ban(models.Model):
    """Keeps an account (or, for a guest, one guest membership) out of a room.

    A user ban holds for any membership that account has or gets in the room
    (an old invite link included); a guest has no account, so the guest's
    membership is banned, and new guests from the address that membership
    joined from (``Membership.joined_from``) are refused while the ban holds (a
    new browser session is not a new person; accounts from there are not affected).
    """

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="bans")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="room_bans",
    )
    membership = models.ForeignKey(
        Membership, on_delete=models.CASCADE, null=True, blank=True, related_name="bans"
    )
    display_name = models.CharField(
        max_length=40, blank=True, help_text="Who was banned, as shown then (filled in if empty)."
    )
    reason = models.CharField(max_length=200, blank=True)
    banned_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="bans_given",
    )
    created_at = models.DateTimeField(default=timezone.now)
    until = models.DateTimeField(null=True, blank=True, help_text="Empty: until lifted.")
    lifted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(user__isnull=False) | models.Q(membership__isnull=False),
                name="ban_names_a_user_or_a_membership",
            )
        ]
        indexes = [
            models.Index(fields=["room", "user"]),
            models.Index(fields=["room", "membership"]),
        ]

    def __str__(self) -> str:
        return f"{self.display_name} banned from {self.room.slug}"

    def is_active(self, *, now=None) -> bool:
        now = now or timezone.now()
        return self.lifted_at is None and (self.until is None or self.until > now)


class AuditLog(models.Model):
    """One row per moderation action, whoever took it and wherever (call or admin)."""

    class Action(models.TextChoices):
        KICK = "kick", "Kick"
        BAN = "ban", "Ban"
        UNBAN = "unban", "Lift ban"
        MUTE = "mute", "Mute"
        MUTE_REQUEST = "mute_request", "Ask to mute"
        MUTE_ALL = "mute_all", "Mute everyone"
        LOCK = "lock", "Lock"
        UNLOCK = "unlock", "Unlock"
        PASSWORD_SET = "password_set", "Set password"
        PASSWORD_CLEAR = "password_clear", "Clear password"
        LOBBY_ON = "lobby_on", "Lobby on"
        LOBBY_OFF = "lobby_off", "Lobby off"
        LOBBY_ADMIT = "lobby_admit", "Admit from lobby"
        LOBBY_REJECT = "lobby_reject", "Reject from lobby"
        ROLE = "role", "Change role"
        HIDE_MESSAGE = "hide_message", "Hide message"
        INVITE_REVOKE = "invite_revoke", "Revoke invite"

    room = models.ForeignKey(
        Room, on_delete=models.SET_NULL, null=True, blank=True, related_name="audit_log"
    )
    room_slug = models.CharField(max_length=50, help_text="Kept if the room is deleted.")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="moderation_actions",
    )
    actor_name = models.CharField(max_length=150)
    action = models.CharField(max_length=20, choices=Action.choices)
    target_member = models.ForeignKey(
        Membership, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    target_name = models.CharField(max_length=150, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "audit log entry"
        verbose_name_plural = "audit log"

    def __str__(self) -> str:
        return f"{self.actor_name} {self.action} {self.target_name} in {self.room_slug}"
