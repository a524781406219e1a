"""Role ranks: who may act on whom in a room (one home for every role comparison)."""

from .models import Role

RANK: dict[str, int] = {Role.GUEST: 0, Role.PARTICIPANT: 1, Role.MODERATOR: 2, Role.OWNER: 3}
# Roles that moderate: always get a call seat, hear lobby knocks, pass locks.
MODERATING = (Role.OWNER, Role.MODERATOR)
# Roles the owner may give a member (owners are made by creating the room).
ASSIGNABLE = (Role.MODERATOR, Role.PARTICIPANT)


def at_least(role: str, need: str) -> bool:
    return RANK[role] >= RANK[need]


def outranks(actor_role: str, target_role: str) -> bool:
    """Moderators act on participants and guests; only the owner on moderators."""
    return RANK[actor_role] > RANK[target_role]


def moderates(role: str) -> bool:
    return role in MODERATING
