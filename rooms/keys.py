"""Redis keys of a room outside presence (presence keys live in rooms/presence.py).

Each key is built here only, from validated ids, and the revisions are bumped
here only, so a key's name and its writers can be found in one place.
"""

from django.db import transaction

from videochat.redis import SharedClient

# A blocking client for services and admin code (sockets use videochat.redis.get_redis).
sync_client = SharedClient()


def modrev_key(room_id: int) -> str:
    """The room's moderation revision: bumped after every change to roles, bans,
    locks or membership; each socket re-reads its member when it changes."""
    return f"modrev:{int(room_id)}"


def modrev_bump_on_commit(*, room_id: int) -> None:
    """After commit: every socket in the room re-reads its member's role and bans."""
    transaction.on_commit(lambda: sync_client().incr(modrev_key(room_id)))


def authrev_key(user_id: int) -> str:
    """Changes whenever the account's password does (sockets re-check their session)."""
    return f"authrev:{int(user_id)}"


def authrev_bump_on_commit(*, user_id: int) -> None:
    """After commit: the account's sockets re-check their login session."""
    transaction.on_commit(lambda: sync_client().incr(authrev_key(user_id)))


def kicked_key(room_id: int, member_id: int) -> str:
    return f"kicked:{int(room_id)}:{int(member_id)}"


def kicked_from_key(room_id: int, address: str) -> str:
    """New guests from the address of a kicked guest are kept out too."""
    return f"kicked-from:{int(room_id)}:{address}"


def kick_keys(*, room_id: int, member_id: int, guest_address: str | None) -> list[str]:
    """The Redis keys any of which, present, keep this membership out as kicked."""
    keys = [kicked_key(room_id, member_id)]
    if guest_address:
        keys.append(kicked_from_key(room_id, guest_address))
    return keys


def lobby_key(room_id: int) -> str:
    """Hash of knock id -> JSON knock: who waits in the room's lobby."""
    return f"lobby:{int(room_id)}"


def call_key(room_id: int) -> str:
    """The id of the room's current call, for its telemetry (rooms/telemetry.py):
    set by the call's first sample, deleted when the call ends (rooms/calls.py)."""
    return f"call:{int(room_id)}"
