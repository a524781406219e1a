"""Writes for rooms, memberships and invites."""

import ipaddress
import re
from datetime import timedelta
from typing import TypedDict

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

from videochat.closecodes import CloseCode
from videochat.errors import BadRequest, Conflict, Forbidden, InviteInvalid, NotFound
from videochat.text import text_check

from . import keys, layer, roles
from .admission import KICK_COOLDOWN_S, Banned, Kicked
from .models import AuditLog, Ban, Invite, Membership, Role, Room
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


# --- moderation -----------------------------------------------------------------
# Every moderation write re-reads the actor's role inside its transaction, so a
# demoted moderator is refused at once whatever their socket believes, writes
# one AuditLog row, and tells sockets only after commit.


class ModTarget(TypedDict):
    member_id: int
    user_id: int | None
    display_name: str
    role: str


class ModResult(TypedDict):
    actor_member_id: int
    actor_name: str
    target: ModTarget | None


class RemovalResult(ModResult):
    """A kick or ban: every membership whose sockets are being closed (a guest's
    other sessions from the same address too), so the call drops their peers."""

    member_ids: list[int]


def _actor(*, room_id: int, actor_member_id: int, need: str) -> Membership:
    actor = (
        Membership.objects.select_related("room", "user")
        .filter(pk=actor_member_id, room_id=room_id)
        .first()
    )
    if actor is None or not roles.at_least(actor.role, need):
        raise Forbidden("Your role in this room does not allow that.")
    return actor


def _target(*, actor: Membership, target_member_id: object) -> Membership:
    if not isinstance(target_member_id, int) or isinstance(target_member_id, bool):
        raise BadRequest("member_id must be an integer.")
    target = (
        Membership.objects.select_related("user")
        .filter(pk=target_member_id, room_id=actor.room_id)
        .first()
    )
    if target is None:
        raise NotFound("No such member in this room.", member_id=target_member_id)
    if target.pk == actor.pk:
        raise Forbidden("You cannot do that to yourself.")
    if not roles.outranks(actor.role, target.role):
        raise Forbidden("You cannot do that to someone of your role or above.")
    return target


def _target_dict(target: Membership | None) -> ModTarget | None:
    if target is None:
        return None
    return ModTarget(
        member_id=target.pk,
        user_id=target.user_id,
        display_name=target.display_name,
        role=target.role,
    )


def audit_record(
    *,
    room: Room,
    actor_user: User | None,
    actor_name: str,
    action: str,
    target: Membership | None = None,
    target_name: str = "",
    detail: dict | None = None,
) -> AuditLog:
    return AuditLog.objects.create(
        room=room,
        room_slug=room.slug,
        actor=actor_user,
        actor_name=actor_name,
        action=action,
        target_member=target,
        target_name=target.display_name if target else target_name,
        detail=detail or {},
    )


@transaction.atomic
def moderation_act(
    *,
    room_id: int,
    actor_member_id: int,
    action: str,
    target_member_id: object = None,
    need: str = Role.MODERATOR,
    detail: dict | None = None,
) -> ModResult:
    """Authorize an action that changes no row of its own (kick, mute, lobby) and audit it."""
    for key, value in (detail or {}).items():
        if isinstance(value, str):  # a kick's reason is stored in the audit log
            text_check(value, field=key)
    actor = _actor(room_id=room_id, actor_member_id=actor_member_id, need=need)
    target = None
    if target_member_id is not None:
        target = _target(actor=actor, target_member_id=target_member_id)
    audit_record(
        room=actor.room,
        actor_user=actor.user,
        actor_name=actor.display_name,
        action=action,
        target=target,
        target_name=(detail or {}).get("target_name", ""),
        detail=detail,
    )
    return ModResult(
        actor_member_id=actor.pk, actor_name=actor.display_name, target=_target_dict(target)
    )


@transaction.atomic
def member_set_role(
    *, room_id: int, actor_member_id: int, target_member_id: object, role: object
) -> ModResult:
    """The owner appoints or demotes moderators; takes effect on every socket at once."""
    if not isinstance(role, str) or role not in roles.ASSIGNABLE:
        raise BadRequest("role must be 'moderator' or 'participant'.")
    actor = _actor(room_id=room_id, actor_member_id=actor_member_id, need=Role.OWNER)
    target = _target(actor=actor, target_member_id=target_member_id)
    if target.is_guest:
        raise BadRequest("Guests cannot be moderators; they have no account.")
    previous = target.role
    target.role = role
    target.save(update_fields=["role"])
    audit_record(
        room=actor.room,
        actor_user=actor.user,
        actor_name=actor.display_name,
        action=AuditLog.Action.ROLE,
        target=target,
        detail={"from": previous, "to": role},
    )
    keys.modrev_bump_on_commit(room_id=room_id)
    layer.to_member_on_commit(target.pk, layer.mod_event("role.changed", role=role))
    layer.to_room_on_commit(room_id, {"type": "member.role", "member_id": target.pk, "role": role})
    return ModResult(
        actor_member_id=actor.pk, actor_name=actor.display_name, target=_target_dict(target)
    )


def _guest_sessions(guest: Membership) -> list[int]:
    """The guest and every other guest membership of the room from its address:
    other browser sessions of the same person, as far as we can tell."""
    if guest.joined_from is None:
        return [guest.pk]
    others = Membership.objects.filter(
        room_id=guest.room_id, user__isnull=True, joined_from=guest.joined_from
    ).exclude(pk=guest.pk)
    return [guest.pk, *others.values_list("pk", flat=True)]


def _ban_frame(ban: Ban, *, by: str) -> dict:
    return {
        "type": "mod.banned",
        "reason": ban.reason,
        "by": by,
        "until": ban.until.isoformat() if ban.until else None,
    }


def _ban_enforce_after_commit(*, ban: Ban, by: str) -> list[int]:
    """Close the banned person's sockets in the room and tell the room; returns
    the memberships whose sockets are closed."""
    if ban.user_id is not None:
        members = list(
            Membership.objects.filter(room_id=ban.room_id, user_id=ban.user_id).values_list(
                "pk", flat=True
            )
        )
    elif ban.membership is not None:
        members = _guest_sessions(ban.membership)
    else:
        members = []
    for member_id in members:
        layer.to_member_on_commit(
            member_id, layer.peer_close(CloseCode.BANNED, _ban_frame(ban, by=by))
        )
    keys.modrev_bump_on_commit(room_id=ban.room_id)
    return members


@transaction.atomic
def ban_create(
    *,
    room_id: int,
    actor_member_id: int,
    target_member_id: object,
    reason: object = "",
    minutes: object = None,
) -> RemovalResult:
    """Ban a member: the account for users, the membership for guests (and
    guests from the address it joined from, see ``Ban``)."""
    if not isinstance(reason, str) or len(reason) > 200:
        raise BadRequest("reason must be a string of at most 200 characters.")
    text_check(reason, field="reason")
    if minutes is not None and (
        not isinstance(minutes, int) or isinstance(minutes, bool) or not 1 <= minutes <= 525600
    ):
        raise BadRequest("minutes must be an integer from 1 to 525600, or null for no end.")
    actor = _actor(room_id=room_id, actor_member_id=actor_member_id, need=Role.MODERATOR)
    target = _target(actor=actor, target_member_id=target_member_id)
    until = timezone.now() + timedelta(minutes=minutes) if minutes else None
    ban = Ban.objects.create(
        room=actor.room,
        user=target.user,
        membership=target if target.is_guest else None,
        display_name=target.display_name,
        reason=reason,
        banned_by=actor.user,
        until=until,
    )
    audit_record(
        room=actor.room,
        actor_user=actor.user,
        actor_name=actor.display_name,
        action=AuditLog.Action.BAN,
        target=target,
        detail={"reason": reason, "until": until.isoformat() if until else None},
    )
    members = _ban_enforce_after_commit(ban=ban, by=actor.display_name)
    return RemovalResult(
        actor_member_id=actor.pk,
        actor_name=actor.display_name,
        target=_target_dict(target),
        member_ids=members,
    )


@transaction.atomic
def member_kick(
    *, room_id: int, actor_member_id: int, target_member_id: object, reason: str = ""
) -> RemovalResult:
    """Kick a member: their sockets close now and they may not come back for
    ``KICK_COOLDOWN_S``. A guest's kick also holds for new guest sessions from
    the address the guest joined from, and closes the ones already open."""
    actor = _actor(room_id=room_id, actor_member_id=actor_member_id, need=Role.MODERATOR)
    target = _target(actor=actor, target_member_id=target_member_id)
    audit_record(
        room=actor.room,
        actor_user=actor.user,
        actor_name=actor.display_name,
        action=AuditLog.Action.KICK,
        target=target,
        detail={"reason": reason, "minutes": KICK_COOLDOWN_S // 60},
    )
    members = _guest_sessions(target) if target.is_guest else [target.pk]
    holds = keys.kick_keys(
        room_id=room_id,
        member_id=target.pk,
        guest_address=target.joined_from if target.is_guest else None,
    )

    def hold() -> None:
        # The hold is in place before any socket closes, so a reload is refused.
        pipe = keys.sync_client().pipeline(transaction=True)
        for key in holds:
            pipe.set(key, "1", ex=KICK_COOLDOWN_S)
        pipe.execute()

    transaction.on_commit(hold)
    frame = {"type": "mod.kicked", "reason": reason, "by": actor.display_name}
    for member_id in members:
        layer.to_member_on_commit(member_id, layer.peer_close(CloseCode.KICKED, frame))
    return RemovalResult(
        actor_member_id=actor.pk,
        actor_name=actor.display_name,
        target=_target_dict(target),
        member_ids=members,
    )


def ban_saved_in_admin(*, ban: Ban, by: User, created: bool) -> None:
    """The admin saved a ban: audit it and, if it holds now, enforce it live."""
    with transaction.atomic():
        audit_record(
            room=ban.room,
            actor_user=by,
            actor_name=by.get_username(),
            action=AuditLog.Action.BAN if ban.is_active() else AuditLog.Action.UNBAN,
            target=ban.membership,
            target_name=ban.display_name,
            detail={"reason": ban.reason, "via": "admin", "created": created},
        )
        if ban.is_active():
            _ban_enforce_after_commit(ban=ban, by=by.get_username())
        else:
            keys.modrev_bump_on_commit(room_id=ban.room_id)


@transaction.atomic
def ban_lift(*, ban: Ban, by: User) -> Ban:
    if ban.lifted_at is None:
        ban.lifted_at = timezone.now()
        ban.save(update_fields=["lifted_at"])
        audit_record(
            room=ban.room,
            actor_user=by,
            actor_name=by.get_username(),
            action=AuditLog.Action.UNBAN,
            target=ban.membership,
            target_name=ban.display_name,
            detail={"ban_id": ban.pk},
        )
        keys.modrev_bump_on_commit(room_id=ban.room_id)
    return ban


@transaction.atomic
def room_set_access(
    *,
    room_id: int,
    actor_member_id: int,
    locked: object = None,
    lobby_enabled: object = None,
    password: object = ...,
) -> dict:
    """Lock / unlock, lobby on / off, set / clear the password; returns the room's state."""
    actor = _actor(room_id=room_id, actor_member_id=actor_member_id, need=Role.MODERATOR)
    room = Room.objects.select_for_update().get(pk=room_id)
    fields, actions = [], []
    if locked is not None:
        if not isinstance(locked, bool):
            raise BadRequest("locked must be a boolean.")
        room.locked = locked
        fields.append("locked")
        actions.append(AuditLog.Action.LOCK if locked else AuditLog.Action.UNLOCK)
    if lobby_enabled is not None:
        if not isinstance(lobby_enabled, bool):
            raise BadRequest("enabled must be a boolean.")
        room.lobby_enabled = lobby_enabled
        fields.append("lobby_enabled")
        actions.append(AuditLog.Action.LOBBY_ON if lobby_enabled else AuditLog.Action.LOBBY_OFF)
    if password is not ...:
        if password is None or password == "":
            room.password_hash = ""
            actions.append(AuditLog.Action.PASSWORD_CLEAR)
        elif isinstance(password, str) and 4 <= len(password) <= 128:
            # Hashed and never shown, but the hasher cannot encode a lone
            # surrogate (it raised a 500): the rule for all stored text.
            text_check(password, field="password", multiline=True)
            room.password_hash = make_password(password)
            actions.append(AuditLog.Action.PASSWORD_SET)
        else:
            raise BadRequest("password must be 4 to 128 characters, or null to clear it.")
        fields.append("password_hash")
    if not fields:
        raise BadRequest("Nothing to change.")
    room.save(update_fields=fields)
    for action in actions:
        audit_record(room=room, actor_user=actor.user, actor_name=actor.display_name, action=action)
    state = room_access_state(room=room)
    keys.modrev_bump_on_commit(room_id=room_id)
    layer.to_room_on_commit(room_id, {"type": "room.access", **state, "by": actor.display_name})
    return state


@transaction.atomic
def room_settings_update(
    *, room_id: int, actor_member_id: int, name: str, guest_access: bool
) -> Room:
    """The room's name and guest access, from the settings page (owner and moderators).

    Turning guests off stops new guests at the invite page; guests who already
    joined stay members (remove them one by one, or ban).
    """
    actor = _actor(room_id=room_id, actor_member_id=actor_member_id, need=Role.MODERATOR)
    text_check(name, field="name")
    room = Room.objects.select_for_update().get(pk=actor.room_id)
    room.name, room.guest_access = name, guest_access
    room.save(update_fields=["name", "guest_access"])
    return room


def room_access_state(*, room: Room) -> dict:
    return {
        "locked": room.locked,
        "lobby_enabled": room.lobby_enabled,
        "password_required": bool(room.password_hash),
    }


def invite_revoke_by(*, invite: Invite, by: User) -> Invite:
    with transaction.atomic():
        if invite.revoked_at is None:
            invite_revoke(invite=invite)
            audit_record(
                room=invite.room,
                actor_user=by,
                actor_name=by.get_username(),
                action=AuditLog.Action.INVITE_REVOKE,
                detail={"invite_id": invite.pk},
            )
    return invite


@transaction.atomic
def message_hide_by_moderator(*, room_id: int, actor_member_id: int, seq: int) -> ModResult:
    """Hide a chat message and audit it in one transaction (no audit row for a miss)."""
    from messaging.services import message_hide

    result = moderation_act(
        room_id=room_id,
        actor_member_id=actor_member_id,
        action=AuditLog.Action.HIDE_MESSAGE,
        detail={"seq": seq},
    )
    message_hide(room_id=room_id, seq=seq, by_member_id=actor_member_id)
    return result


def member_role_saved_in_admin(*, membership: Membership, by: User) -> None:
    with transaction.atomic():
        audit_record(
            room=membership.room,
            actor_user=by,
            actor_name=by.get_username(),
            action=AuditLog.Action.ROLE,
            target=membership,
            detail={"to": membership.role, "via": "admin"},
        )
        keys.modrev_bump_on_commit(room_id=membership.room_id)
        layer.to_member_on_commit(
            membership.pk, layer.mod_event("role.changed", role=membership.role)
        )
        layer.to_room_on_commit(
            membership.room_id,
            {"type": "member.role", "member_id": membership.pk, "role": membership.role},
        )


def moderator_check(*, room_id: int, actor_member_id: int) -> None:
    """Raise Forbidden unless the member moderates the room now."""
    _actor(room_id=room_id, actor_member_id=actor_member_id, need=Role.MODERATOR)


def room_access_saved_in_admin(*, room: Room, by: User, fields: list[str]) -> None:
    lobby = AuditLog.Action.LOBBY_ON if room.lobby_enabled else AuditLog.Action.LOBBY_OFF
    actions = {
        "locked": AuditLog.Action.LOCK if room.locked else AuditLog.Action.UNLOCK,
        "lobby_enabled": lobby,
    }
    with transaction.atomic():
        for field in fields:
            audit_record(
                room=room,
                actor_user=by,
                actor_name=by.get_username(),
                action=actions[field],
                detail={"via": "admin"},
            )
        keys.modrev_bump_on_commit(room_id=room.pk)
        layer.to_room_on_commit(
            room.pk,
            {"type": "room.access", **room_access_state(room=room), "by": by.get_username()},
        )
