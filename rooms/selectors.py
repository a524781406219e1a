"""Reads for rooms. Return evaluated data so results can cross async boundaries."""

from datetime import datetime
from typing import TypedDict

from django.contrib.auth.models import AnonymousUser, User
from django.contrib.sessions.backends.base import SessionBase
from django.db.models import Q
from django.utils import timezone

from . import roles
from .models import Ban, Membership, Room

GUEST_SESSION_KEY = "guest_memberships"


class MemberRow(TypedDict):
    id: int
    display_name: str
    role: str
    is_guest: bool


def rooms_for_user(*, user: User) -> list[Room]:
    return list(Room.objects.filter(memberships__user=user).select_related("owner").distinct())


def rooms_moderated_by(*, user: User) -> set[int]:
    """Ids of the rooms where ``user`` is owner or moderator (their settings page is open)."""
    return set(
        Membership.objects.filter(user=user, role__in=roles.MODERATING).values_list(
            "room_id", flat=True
        )
    )


def membership_for(
    *, room: Room, user: User | AnonymousUser, session: SessionBase | None
) -> Membership | None:
    """The caller's membership: by account, else by a guest id kept in the session."""
    if user.is_authenticated:
        found = Membership.objects.filter(room=room, user=user).first()
        if found:
            return found
    if session is not None:
        guest_id = session.get(GUEST_SESSION_KEY, {}).get(str(room.pk))
        if guest_id:
            return Membership.objects.filter(pk=guest_id, room=room, user__isnull=True).first()
    return None


def room_members(*, room: Room) -> list[MemberRow]:
    return [
        MemberRow(id=m.pk, display_name=m.display_name, role=m.role, is_guest=m.user_id is None)
        for m in room.memberships.all()
    ]


def room_active_invite(*, room: Room):
    return next((i for i in room.invites.all() if i.is_usable()), None)


class RoomInfo(TypedDict):
    id: int
    slug: str
    name: str
    capacity: int


class MemberInfo(TypedDict):
    id: int
    user_id: int | None
    display_name: str
    role: str


class SocketAccess(TypedDict):
    room: RoomInfo | None
    member: MemberInfo | None


def socket_access(
    *, slug: str, user: User | AnonymousUser, session: SessionBase | None
) -> SocketAccess:
    """What a connecting socket may do: the room (None if missing) and the caller's membership."""
    room = Room.objects.filter(slug=slug).first()
    if room is None:
        return SocketAccess(room=None, member=None)
    info = RoomInfo(id=room.pk, slug=room.slug, name=room.name, capacity=room.capacity)
    membership = membership_for(room=room, user=user, session=session)
    if membership is None:
        return SocketAccess(room=info, member=None)
    return SocketAccess(
        room=info,
        member=MemberInfo(
            id=membership.pk,
            user_id=membership.user_id,
            display_name=membership.display_name,
            role=membership.role,
        ),
    )


# --- moderation reads (rooms/admission.py, rooms/moderation.py) ----------------


class BanInfo(TypedDict):
    id: int
    reason: str
    until: str | None


class AdmissionState(TypedDict):
    """What admission needs at hello, read fresh from the database."""

    role: str | None  # None: the membership is gone
    ban: BanInfo | None
    # A guest membership's address: kicks and bans of guests from there hold for it.
    guest_address: str | None
    locked: bool
    lobby_enabled: bool
    password_hash: str


def _ban_holding(*, room_id: int, who: Q) -> BanInfo | None:
    """The newest ban of the room matching ``who`` that holds now, if any."""
    now = timezone.now()
    ban = (
        Ban.objects.filter(who, room_id=room_id, lifted_at__isnull=True)
        .filter(Q(until__isnull=True) | Q(until__gt=now))
        .order_by("-created_at")
        .first()
    )
    if ban is None:
        return None
    return BanInfo(id=ban.pk, reason=ban.reason, until=ban.until.isoformat() if ban.until else None)


def ban_active_for(
    *, room_id: int, user_id: int | None, member_id: int, guest_address: str | None = None
) -> BanInfo | None:
    """The ban keeping this account (or guest membership) out of the room, if any.

    A guest membership from ``guest_address`` is also kept out by a guest's ban
    from there, even if it was opened before that ban (another browser session
    of the same person)."""
    who = Q(membership_id=member_id)
    if user_id is not None:
        who |= Q(user_id=user_id)
    elif guest_address:
        who |= Q(membership__joined_from=guest_address, user__isnull=True)
    return _ban_holding(room_id=room_id, who=who)


def guest_ban_from(*, room_id: int, address: str) -> BanInfo | None:
    """A guest's ban that keeps new guests from ``address`` out of the room, if any:
    one naming a guest membership that joined from there."""
    return _ban_holding(room_id=room_id, who=Q(membership__joined_from=address, user__isnull=True))


def admission_state(*, room_id: int, member_id: int, user_id: int | None) -> AdmissionState:
    room = Room.objects.only("locked", "lobby_enabled", "password_hash").get(pk=room_id)
    row = (
        Membership.objects.filter(pk=member_id, room_id=room_id)
        .values("role", "user_id", "joined_from")
        .first()
    )
    guest_address = row["joined_from"] if row and row["user_id"] is None else None
    return AdmissionState(
        role=row["role"] if row else None,
        ban=ban_active_for(
            room_id=room_id, user_id=user_id, member_id=member_id, guest_address=guest_address
        ),
        guest_address=guest_address,
        locked=room.locked,
        lobby_enabled=room.lobby_enabled,
        password_hash=room.password_hash,
    )


# --- the room settings page -------------------------------------------------------


class MemberStatusRow(TypedDict):
    id: int | None  # None: banned, no longer a member
    display_name: str
    role: str | None
    is_guest: bool
    # Banned now: until when (None with banned true: until lifted).
    banned: bool
    banned_until: datetime | None
    ban_reason: str
    # Kicked: out until this time, then may come back.
    kicked_until: datetime | None


def room_members_with_status(
    *, room: Room, kicked_until: dict[int, datetime]
) -> list[MemberStatusRow]:
    """Every member with role and standing, then people banned who are no longer members.

    ``kicked_until``: member id -> when their kick ends (kept in Redis, read by the caller).
    """
    now = timezone.now()
    bans = list(
        Ban.objects.filter(room=room, lifted_at__isnull=True)
        .filter(Q(until__isnull=True) | Q(until__gt=now))
        .order_by("-created_at")
    )
    rows: list[MemberStatusRow] = []
    covered: set[int] = set()
    for m in room.memberships.all():
        ban = next(
            (b for b in bans if b.membership_id == m.pk or (m.user_id and b.user_id == m.user_id)),
            None,
        )
        if ban is not None:
            covered.add(ban.pk)
        rows.append(
            MemberStatusRow(
                id=m.pk,
                display_name=m.display_name,
                role=m.role,
                is_guest=m.user_id is None,
                banned=ban is not None,
                banned_until=ban.until if ban else None,
                ban_reason=ban.reason if ban else "",
                kicked_until=kicked_until.get(m.pk),
            )
        )
    for ban in bans:
        if ban.pk in covered or any(b.pk in covered and b.user_id == ban.user_id for b in bans):
            continue
        covered.add(ban.pk)
        rows.append(
            MemberStatusRow(
                id=None,
                display_name=ban.display_name,
                role=None,
                is_guest=ban.user_id is None,
                banned=True,
                banned_until=ban.until,
                ban_reason=ban.reason,
                kicked_until=None,
            )
        )
    return rows
