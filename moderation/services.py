"""One function per moderation intent: check, write, audit, announce.

Kick, ban, unban, mute, mute all, lock / lobby / password, lobby decisions,
roles and hiding a chat message. The socket handlers (moderation/handlers.py)
and the Django admin (moderation/admin.py) call the same functions.

Who acts is either a member of the room (``actor_member_id``: their role is
re-read inside the transaction, so a demoted moderator is refused at once
whatever their socket believes) or staff in the admin (``by``: the admin's
own permissions were checked; the audit row says ``via: admin``). Each
intent writes one AuditLog row per change and tells sockets only after
commit (rooms.layer ``*_on_commit``), so nobody hears of a rollback.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypedDict

import structlog
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from messaging.services import message_hide
from rooms import admission, calls, keys, layer, roles
from rooms.admission import KICK_COOLDOWN_S
from rooms.models import AuditLog, Ban, Invite, Membership, Role, Room
from rooms.services import invite_revoke
from videochat.closecodes import CloseCode
from videochat.errors import BadRequest, Conflict, Forbidden, NotFound
from videochat.text import text_check

log = structlog.get_logger(__name__)

REASON_MAX = 200


class ModTarget(TypedDict):
    member_id: int
    user_id: int | None
    display_name: str
    role: str


class ModResult(TypedDict):
    actor_name: str
    target: ModTarget | None


class RemovalResult(ModResult):
    """A kick or ban: every membership whose sockets are being closed (a guest's
    other sessions from the same address too); their peers leave the call."""

    member_ids: list[int]


@dataclass(frozen=True)
class Actor:
    name: str
    user: User | None
    # The acting member of the room; None for staff in the admin.
    member: Membership | None

    @property
    def detail(self) -> dict[str, Any]:
        """Added to every audit row: how the action was taken."""
        return {} if self.member is not None else {"via": "admin"}


# --- who acts, on whom --------------------------------------------------------------


def _actor(
    *, room_id: int, actor_member_id: int | None = None, by: User | None = None, need: str
) -> Actor:
    if by is not None:
        return Actor(name=by.get_username(), user=by, member=None)
    if actor_member_id is None:
        raise Forbidden("Your role in this room does not allow that.")
    member = (
        Membership.objects.select_related("room", "user")
        .filter(pk=actor_member_id, room_id=room_id)
        .first()
    )
    if member is None or not roles.at_least(member.role, need):
        raise Forbidden("Your role in this room does not allow that.")
    return Actor(name=member.display_name, user=member.user, member=member)


def _target(*, actor: Actor, room_id: int, target_member_id: object) -> Membership:
    if not isinstance(target_member_id, int) or isinstance(target_member_id, bool):
        raise BadRequest("member_id must be an integer.")
    target = (
        Membership.objects.select_related("room", "user")
        .filter(pk=target_member_id, room_id=room_id)
        .first()
    )
    if target is None:
        raise NotFound("No such member in this room.", member_id=target_member_id)
    if actor.member is not None:
        if target.pk == actor.member.pk:
            raise Forbidden("You cannot do that to yourself.")
        if not roles.outranks(actor.member.role, target.role):
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


def _result(actor: Actor, target: Membership | None) -> ModResult:
    return ModResult(actor_name=actor.name, target=_target_dict(target))


def reason_check(reason: object) -> str:
    if not isinstance(reason, str) or len(reason) > REASON_MAX:
        raise BadRequest(f"reason must be a string of at most {REASON_MAX} characters.")
    return text_check(reason, field="reason").strip()


def audit_record(
    *,
    room: Room,
    actor: Actor,
    action: str,
    target: Membership | None = None,
    target_name: str = "",
    detail: dict | None = None,
) -> AuditLog:
    return AuditLog.objects.create(
        room=room,
        room_slug=room.slug,
        actor=actor.user,
        actor_name=actor.name,
        action=action,
        target_member=target,
        target_name=target.display_name if target else target_name,
        detail={**(detail or {}), **actor.detail},
    )


def _after_commit(what: str, work: Callable[[], Awaitable[None]]) -> None:
    """Presence work (Redis) once the transaction commits; logged if it fails:
    the record stands, and each socket re-checks against it (rooms.security)."""

    async def run() -> None:
        await work()

    def sync() -> None:
        try:
            async_to_sync(run)()
        except Exception:  # noqa: BLE001
            log.warning("moderation.after_commit_failed", what=what, exc_info=True)

    transaction.on_commit(sync)


def _announce_on_commit(room_id: int, action: str, result: ModResult, **extra: Any) -> None:
    """``mod.action`` to the room: who did what to whom."""
    target = result["target"]
    layer.to_room_on_commit(
        room_id,
        {
            "type": "mod.action",
            "action": action,
            "by": result["actor_name"],
            "target": {"member_id": target["member_id"], "display_name": target["display_name"]}
            if target
            else None,
            **extra,
        },
    )


def moderator_check(*, room_id: int, actor_member_id: int) -> None:
    """Raise Forbidden unless the member moderates the room now (a read: no audit)."""
    _actor(room_id=room_id, actor_member_id=actor_member_id, need=Role.MODERATOR)


# --- removing people ---------------------------------------------------------------


def _guest_sessions(guest: Membership) -> list[int]:
    """The guest and every other guest membership of the room from its address:
    other browser sessions of the same person, as far as we can tell."""
    if guest.joined_from is None:
        return [guest.pk]
    others = Membership.objects.filter(
        room_id=guest.room_id, user__isnull=True, joined_from=guest.joined_from
    ).exclude(pk=guest.pk)
    return [guest.pk, *others.values_list("pk", flat=True)]


def _remove_on_commit(
    *, room_id: int, member_ids: list[int], code: int, frame: dict, reason: str
) -> None:
    """Close the members' sockets on every instance and take their peers out of
    the call now (even a socket in its resume grace)."""
    for member_id in member_ids:
        layer.to_member_on_commit(member_id, layer.peer_close(code, frame))
    _after_commit(
        "drop_peers",
        lambda: calls.drop_member_peers(room_id, member_ids=set(member_ids), reason=reason),
    )


@transaction.atomic
def member_kick(
    *, room_id: int, actor_member_id: int, target_member_id: object, reason: object = ""
) -> RemovalResult:
    """Kick a member: their sockets close now and they may not come back for
    ``KICK_COOLDOWN_S``. A guest's kick also holds for new guest sessions from
    the address the guest joined from, and closes the ones already open."""
    reason = reason_check(reason)
    actor = _actor(room_id=room_id, actor_member_id=actor_member_id, need=Role.MODERATOR)
    target = _target(actor=actor, room_id=room_id, target_member_id=target_member_id)
    audit_record(
        room=target.room,
        actor=actor,
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
    frame = {"type": "mod.kicked", "reason": reason, "by": actor.name}
    _remove_on_commit(
        room_id=room_id, member_ids=members, code=CloseCode.KICKED, frame=frame, reason="kicked"
    )
    result = RemovalResult(**_result(actor, target), member_ids=members)
    _announce_on_commit(room_id, "kick", result, reason=reason)
    return result


def _ban_frame(ban: Ban, *, by: str) -> dict:
    return {
        "type": "mod.banned",
        "reason": ban.reason,
        "by": by,
        "until": ban.until.isoformat() if ban.until else None,
    }


def _ban_members(ban: Ban) -> list[int]:
    if ban.user_id is not None:
        return list(
            Membership.objects.filter(room_id=ban.room_id, user_id=ban.user_id).values_list(
                "pk", flat=True
            )
        )
    if ban.membership is not None:
        return _guest_sessions(ban.membership)
    return []


@transaction.atomic
def ban_save(*, ban: Ban, actor: Actor, created: bool) -> list[int]:
    """Write a ban (new or edited), audit it, and enforce it live while it holds:
    the banned person's sockets close and their peers leave the call. Returns
    the memberships whose sockets are closed. Lifting is ``ban_lift``."""
    ban.save()
    active = ban.is_active()
    audit_record(
        room=ban.room,
        actor=actor,
        action=AuditLog.Action.BAN if active else AuditLog.Action.UNBAN,
        target=ban.membership,
        target_name=ban.display_name,
        detail={
            "reason": ban.reason,
            "until": ban.until.isoformat() if ban.until else None,
            **({"created": created} if actor.member is None else {}),
        },
    )
    keys.modrev_bump_on_commit(room_id=ban.room_id)
    if not active:
        return []
    members = _ban_members(ban)
    _remove_on_commit(
        room_id=ban.room_id,
        member_ids=members,
        code=CloseCode.BANNED,
        frame=_ban_frame(ban, by=actor.name),
        reason="banned",
    )
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
    """Ban a member from the call: the account for users, the membership for
    guests (and guests from the address it joined from, see ``Ban``)."""
    reason = reason_check(reason)
    if minutes is not None and (
        not isinstance(minutes, int) or isinstance(minutes, bool) or not 1 <= minutes <= 525600
    ):
        raise BadRequest("minutes must be an integer from 1 to 525600, or null for no end.")
    actor = _actor(room_id=room_id, actor_member_id=actor_member_id, need=Role.MODERATOR)
    target = _target(actor=actor, room_id=room_id, target_member_id=target_member_id)
    ban = Ban(
        room=target.room,
        user=target.user,
        membership=target if target.is_guest else None,
        display_name=target.display_name,
        reason=reason,
        banned_by=actor.user,
        until=timezone.now() + timedelta(minutes=minutes) if minutes else None,
    )
    members = ban_save(ban=ban, actor=actor, created=True)
    result = RemovalResult(**_result(actor, target), member_ids=members)
    _announce_on_commit(room_id, "ban", result, reason=reason)
    return result


@transaction.atomic
def ban_lift(*, ban: Ban, by: User) -> Ban:
    """Unban (from the admin): the person may come back."""
    if ban.lifted_at is None:
        ban.lifted_at = timezone.now()
        ban.save(update_fields=["lifted_at"])
        audit_record(
            room=ban.room,
            actor=_actor(room_id=ban.room_id, by=by, need=Role.MODERATOR),
            action=AuditLog.Action.UNBAN,
            target=ban.membership,
            target_name=ban.display_name,
            detail={"ban_id": ban.pk},
        )
        keys.modrev_bump_on_commit(room_id=ban.room_id)
    return ban


def staff(user: User) -> Actor:
    """Staff acting in the admin (the admin checked their permissions)."""
    return Actor(name=user.get_username(), user=user, member=None)


# --- microphones -------------------------------------------------------------------


@transaction.atomic
def member_mute(
    *, room_id: int, actor_member_id: int, target_member_id: object, request: object = False
) -> ModResult:
    """``request``: ask the member to mute; otherwise the server mutes them now."""
    if not isinstance(request, bool):
        raise BadRequest("request must be a boolean.")
    actor = _actor(room_id=room_id, actor_member_id=actor_member_id, need=Role.MODERATOR)
    target = _target(actor=actor, room_id=room_id, target_member_id=target_member_id)
    action = AuditLog.Action.MUTE_REQUEST if request else AuditLog.Action.MUTE
    audit_record(room=target.room, actor=actor, action=action, target=target)
    kind = "mod.mute_request" if request else "mod.muted"
    layer.to_member_on_commit(target.pk, layer.peer_frame({"type": kind, "by": actor.name}))
    if not request:
        _after_commit("mute", lambda: calls.mute_peers(room_id, member_ids={target.pk}))
    result = _result(actor, target)
    _announce_on_commit(room_id, "mute_request" if request else "mute", result)
    return result


@transaction.atomic
def room_mute_all(*, room_id: int, actor_member_id: int) -> ModResult:
    """Everyone but the owner and moderators is muted now."""
    actor = _actor(room_id=room_id, actor_member_id=actor_member_id, need=Role.MODERATOR)
    room = Room.objects.get(pk=room_id)
    audit_record(room=room, actor=actor, action=AuditLog.Action.MUTE_ALL)
    _after_commit("mute_all", lambda: calls.mute_peers(room_id, member_ids=None))
    # Clients of participants and guests switch their microphone off on this.
    layer.to_room_on_commit(room_id, {"type": "mod.mute_all", "by": actor.name})
    return _result(actor, None)


# --- who may come in ---------------------------------------------------------------


@transaction.atomic
def room_settings_update(
    *, room_id: int, actor_member_id: int, name: str, guest_access: bool
) -> Room:
    """The room's name and guest access, from the settings page (owner and moderators).

    Turning guests off stops new guests at the invite page; guests who already
    joined stay members (remove them one by one, or ban).
    """
    _actor(room_id=room_id, actor_member_id=actor_member_id, need=Role.MODERATOR)
    text_check(name, field="name")
    room = Room.objects.select_for_update().get(pk=room_id)
    room.name, room.guest_access = name, guest_access
    room.save(update_fields=["name", "guest_access"])
    return room


def room_access_state(*, room: Room) -> dict:
    return {
        "locked": room.locked,
        "lobby_enabled": room.lobby_enabled,
        "password_required": bool(room.password_hash),
    }


@transaction.atomic
def room_set_access(
    *,
    room_id: int,
    actor_member_id: int | None = None,
    by: User | None = None,
    locked: object = None,
    lobby_enabled: object = None,
    password: object = ...,
) -> dict:
    """Lock / unlock, lobby on / off, set / clear the password; returns the room's state."""
    actor = _actor(room_id=room_id, actor_member_id=actor_member_id, by=by, need=Role.MODERATOR)
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
        audit_record(room=room, actor=actor, action=action)
    state = room_access_state(room=room)
    keys.modrev_bump_on_commit(room_id=room_id)
    layer.to_room_on_commit(room_id, {"type": "room.access", **state, "by": actor.name})
    return state


async def lobby_decide(
    *, room_id: int, actor_member_id: int, knock_id: str, admitted: bool, reason: str = ""
) -> ModResult:
    """Let a knocking socket in, or turn it away; the first deciding moderator wins."""
    knock = await admission.lobby_get(room_id=room_id, knock_id=knock_id)
    if knock is None:
        raise NotFound("Nobody is waiting with that knock.", knock_id=knock_id)
    result = await database_sync_to_async(_lobby_audit)(
        room_id=room_id,
        actor_member_id=actor_member_id,
        target_member_id=knock["member_id"],
        admitted=admitted,
        reason=reason,
    )
    if await admission.lobby_take(room_id=room_id, knock_id=knock_id) is None:
        raise Conflict("Another moderator already decided.", knock_id=knock_id)
    event = "lobby.admitted" if admitted else "lobby.rejected"
    await layer.to_peer(knock["channel"], layer.mod_event(event, knock_id=knock_id, reason=reason))
    await layer.to_moderators(
        room_id,
        {
            "type": "lobby.resolved",
            "knock_id": knock_id,
            "decision": "admitted" if admitted else "rejected",
            "by": result["actor_name"],
        },
    )
    return result


@transaction.atomic
def _lobby_audit(
    *, room_id: int, actor_member_id: int, target_member_id: int, admitted: bool, reason: str
) -> ModResult:
    actor = _actor(room_id=room_id, actor_member_id=actor_member_id, need=Role.MODERATOR)
    target = _target(actor=actor, room_id=room_id, target_member_id=target_member_id)
    audit_record(
        room=target.room,
        actor=actor,
        action=AuditLog.Action.LOBBY_ADMIT if admitted else AuditLog.Action.LOBBY_REJECT,
        target=target,
        detail={"reason": reason} if reason else None,
    )
    return _result(actor, target)


async def lobby_open(*, room_id: int, actor_member_id: int, enabled: object) -> None:
    """Lobby on or off; turning it off lets everyone waiting in."""
    await database_sync_to_async(room_set_access)(
        room_id=room_id, actor_member_id=actor_member_id, lobby_enabled=enabled
    )
    if enabled is False:
        # Nobody is left knocking at a door that is now open.
        for knock in await admission.lobby_list(room_id=room_id):
            await lobby_decide(
                room_id=room_id,
                actor_member_id=actor_member_id,
                knock_id=knock["knock_id"],
                admitted=True,
            )


# --- roles and chat ----------------------------------------------------------------


@transaction.atomic
def member_set_role(
    *,
    room_id: int,
    actor_member_id: int | None = None,
    by: User | None = None,
    target_member_id: object,
    role: object,
) -> ModResult:
    """The owner (or staff in the admin) appoints or demotes moderators; it takes
    effect on every socket of the member at once."""
    actor = _actor(room_id=room_id, actor_member_id=actor_member_id, by=by, need=Role.OWNER)
    # Staff may set any role the admin offers them (it hides owner from non-superusers).
    allowed = roles.ASSIGNABLE if actor.member is not None else tuple(Role.values)
    if not isinstance(role, str) or role not in allowed:
        raise BadRequest("role must be 'moderator' or 'participant'.")
    target = _target(actor=actor, room_id=room_id, target_member_id=target_member_id)
    if actor.member is not None and target.is_guest:
        raise BadRequest("Guests cannot be moderators; they have no account.")
    previous = target.role
    target.role = role
    target.save(update_fields=["role"])
    audit_record(
        room=target.room,
        actor=actor,
        action=AuditLog.Action.ROLE,
        target=target,
        detail={"from": previous, "to": role},
    )
    keys.modrev_bump_on_commit(room_id=room_id)
    layer.to_member_on_commit(target.pk, layer.mod_event("role.changed", role=role))
    layer.to_room_on_commit(room_id, {"type": "member.role", "member_id": target.pk, "role": role})
    return _result(actor, target)


@transaction.atomic
def message_hide_by_moderator(*, room_id: int, actor_member_id: int, seq: int) -> ModResult:
    """Hide a chat message and audit it in one transaction (no audit row for a miss).

    messaging.services.message_hide tells the room (chat.hidden) after commit.
    """
    actor = _actor(room_id=room_id, actor_member_id=actor_member_id, need=Role.MODERATOR)
    room = Room.objects.get(pk=room_id)
    audit_record(room=room, actor=actor, action=AuditLog.Action.HIDE_MESSAGE, detail={"seq": seq})
    message_hide(room_id=room_id, seq=seq, by_member_id=actor_member_id)
    return _result(actor, None)


def invite_revoke_by(*, invite: Invite, by: User) -> Invite:
    """Revoke an invite link from the admin, audited."""
    with transaction.atomic():
        if invite.revoked_at is None:
            invite_revoke(invite=invite)
            audit_record(
                room=invite.room,
                actor=staff(by),
                action=AuditLog.Action.INVITE_REVOKE,
                detail={"invite_id": invite.pk},
            )
    return invite
