"""Writes for rooms, memberships and invites."""

import re

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

from videochat.errors import Conflict, InviteInvalid

from .models import Invite, Membership, Role, Room

_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{16,64}")


def suggest_slug(name: str) -> str:
    return slugify(name)[:50].strip("-")


@transaction.atomic
def room_create(
    *, owner: AbstractBaseUser, name: str, slug: str, capacity: int, guest_access: bool
) -> Room:
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


def invite_create(*, room: Room, created_by: AbstractBaseUser | None) -> Invite:
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


def membership_join(*, invite: Invite, user: AbstractBaseUser) -> Membership:
    membership, _ = Membership.objects.get_or_create(
        room=invite.room,
        user=user,
        defaults={"display_name": user.get_username(), "role": Role.PARTICIPANT},
    )
    return membership


def membership_join_as_guest(*, invite: Invite, display_name: str) -> Membership:
    if not invite.room.guest_access:
        raise InviteInvalid("This room does not admit guests; please log in.")
    return Membership.objects.create(
        room=invite.room, user=None, display_name=display_name, role=Role.GUEST
    )
