"""Writes for rooms, memberships and invites."""

import ipaddress
import re

from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

from videochat.errors import Conflict, Forbidden, InviteInvalid
from videochat.text import text_check

from . import keys
from .admission import Banned, Kicked
from .models import Invite, Membership, Role, Room
from .selectors import ban_active_for, guest_ban_from

_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{16,64}")


def suggest_slug(name: str) -> str:
    return slugify(name)[:50].strip("-")


@transaction.atomic
def room_create(*, owner: User, name: str, slug: str, capacity: int, guest_access: bool) -> Room:
    # The form checks this too; services are also called by commands and the admin.
    text_check(name, field="name")
    # One owner's creations in turn (two tabs cannot both pass the cap).
    User.objects.select_for_update().filter(pk=owner.pk).first()
    if Room.objects.filter(owner=owner).count() >= settings.ROOMS_PER_USER_MAX:
        raise Conflict(
            f"You already own {settings.ROOMS_PER_USER_MAX} rooms, the most allowed; "
            "delete one before creating another."
        )
    try:
        with transaction.atomic():
            room = Room.objects.create(
                owner=owner, name=name, slug=slug, capacity=capacity, guest_access=guest_access
            )
    except IntegrityError as exc:
        raise Conflict("A room with this address already exists.", field="slug") from exc
    Membership.objects.create(
        room=room, user=owner, display_name=owner.get_username(), role=Role.OWNER
    )
    Invite.objects.create(room=room, created_by=owner)
    return room


def invite_create(*, room: Room, created_by: User | None) -> Invite:
    return Invite.objects.create(room=room, created_by=created_by)


def invite_revoke(*, invite: Invite) -> Invite:
    if invite.revoked_at is None:
        invite.revoked_at = timezone.now()
        invite.save(update_fields=["revoked_at"])
    return invite


def invite_resolve(*, token: str) -> Invite:
    """The usable invite for ``token``, or InviteInvalid (no hint which part failed)."""
    if not _TOKEN_RE.fullmatch(token):
        # Never hand junk (NUL bytes, megabytes) to the database.
        raise InviteInvalid()
    invite = Invite.objects.select_related("room").filter(token=token).first()
    if invite is None or not invite.is_usable():
        raise InviteInvalid()
    return invite


def membership_join(*, invite: Invite, user: User) -> Membership:
    # An old invite link must not let a banned account back in.
    existing = Membership.objects.filter(room=invite.room, user=user).first()
    if ban_active_for(
        room_id=invite.room_id, user_id=user.pk, member_id=existing.pk if existing else 0
    ):
        raise Banned()
    membership, _ = Membership.objects.get_or_create(
        room=invite.room,
        user=user,
        defaults={"display_name": user.get_username(), "role": Role.PARTICIPANT},
    )
    return membership


def membership_join_as_guest(
    *, invite: Invite, display_name: str, address: str | None = None
) -> Membership:
    """A new guest membership; ``address`` is where the guest comes from (the
    client's IP), refused while a guest banned in this room came from there."""
    if not invite.room.guest_access:
        raise InviteInvalid("This room does not admit guests; please log in.")
    text_check(display_name, field="display_name")
    address = _ip_or_none(address)
    if address and guest_ban_from(room_id=invite.room_id, address=address):
        raise Banned("Guests from your network are banned from this room; log in to join.")
    if address and keys.sync_client().exists(keys.kicked_from_key(invite.room_id, address)):
        raise Kicked()
    with transaction.atomic():
        # Guest joins of one room in turn, so the name and cap checks hold.
        Room.objects.select_for_update().filter(pk=invite.room_id).first()
        # A guest must not pass for someone else: not for a member of the room
        # (a moderator's name on a guest), nor for any account.
        wanted = display_name.casefold()
        names = Membership.objects.filter(room_id=invite.room_id).values_list(
            "display_name", flat=True
        )
        if any(name.casefold() == wanted for name in names) or (
            User.objects.filter(username__iexact=display_name).exists()
        ):
            raise Conflict(
                "Someone already has that name here; choose another.", field="display_name"
            )
        # Guests are counted per invite link (those who joined since it was made).
        admitted = Membership.objects.filter(
            room_id=invite.room_id, role=Role.GUEST, joined_at__gte=invite.created_at
        ).count()
        if admitted >= settings.GUESTS_PER_INVITE_MAX:
            raise Forbidden(
                "This invite link has admitted as many guests as it may; ask for a new link."
            )
        return Membership.objects.create(
            room=invite.room,
            user=None,
            display_name=display_name,
            role=Role.GUEST,
            joined_from=address,
        )


def _ip_or_none(address: str | None) -> str | None:
    try:
        return str(ipaddress.ip_address(address)) if address else None
    except ValueError:  # "unknown", a unix socket path: nothing to ban by
        return None
