"""Mention emails, throttled per recipient and room: a digest, not one mail per message.

Fifteen messages mentioning someone in one second sent fifteen emails. Now the
first mention in a quiet spell is mailed at once (the person learns they are
wanted), and later ones within ``MENTION_DIGEST_S`` wait in Redis and go out
together as one digest when that window ends (a Celery task with a
countdown). The state is in Redis so every server and worker shares it.

Keys per (room, member): ``mention:cool`` (a mail went out; the window runs),
``mention:lines`` (what waits for the digest), ``mention:sched`` (a digest is
scheduled, so the next mention does not schedule another).
"""

import redis
import structlog
from django.conf import settings
from django.db import transaction

from deliveries.enqueue import task_send
from deliveries.services import notify_offline_members
from videochat.redis import SharedClient

log = structlog.get_logger(__name__)

# A digest quotes at most this many mentions (the newest), and says how many there were.
DIGEST_MAX_LINES = 20
LINE_MAX_CHARS = 300
# The digest's Celery task (messaging/tasks.py registers it under this name).
DIGEST_TASK = "messaging.mention_digest_send"

_redis = SharedClient(decode_responses=True)


def _key(kind: str, room_id: int, member_id: int) -> str:
    return f"mention:{kind}:{int(room_id)}:{int(member_id)}"


def mentions_notify(*, room_id: int, member_ids: list[int], line: str) -> None:
    """Tell mentioned members, once the message's transaction commits (a rolled-back
    message mentions nobody); throttled per member and room."""
    transaction.on_commit(
        lambda: _route(room_id=room_id, member_ids=member_ids, line=line[:LINE_MAX_CHARS])
    )


def _route(*, room_id: int, member_ids: list[int], line: str) -> None:
    window = settings.MENTION_DIGEST_S
    now_ids: list[int] = []
    try:
        r = _redis()
        for member_id in member_ids:
            if r.set(_key("cool", room_id, member_id), "1", nx=True, ex=window):
                now_ids.append(member_id)
                continue
            lines = _key("lines", room_id, member_id)
            with r.pipeline() as pipe:
                pipe.rpush(lines, line)
                pipe.expire(lines, window * 10)
                pipe.execute()
            if r.set(_key("sched", room_id, member_id), "1", nx=True, ex=window * 10):
                wait = r.ttl(_key("cool", room_id, member_id))
                _schedule_digest(
                    room_id=room_id, member_id=member_id, countdown=max(1, int(wait or 0))
                )
    except redis.RedisError as exc:
        # Fail open: a mention mail too many beats a mention lost.
        log.warning("mentions.throttle_unavailable", error=repr(exc), room=room_id)
        now_ids = member_ids
    if now_ids:
        notify_offline_members(room_id=room_id, member_ids=now_ids, reason="mention", text=line)


def _schedule_digest(*, room_id: int, member_id: int, countdown: int) -> None:
    # By name: messaging.tasks imports this module.
    task_send(DIGEST_TASK, args=[room_id, member_id], countdown=countdown)


def mention_digest_send(*, room_id: int, member_id: int) -> int:
    """Mail what waited for ``member_id`` in the room as one digest; returns how many
    mentions it held. The window starts again, so a steady stream of mentions
    makes one mail per window."""
    r = _redis()
    lines_key = _key("lines", room_id, member_id)
    with r.pipeline(transaction=True) as pipe:
        pipe.lrange(lines_key, 0, -1)
        pipe.delete(lines_key)
        pipe.delete(_key("sched", room_id, member_id))
        pipe.set(_key("cool", room_id, member_id), "1", ex=settings.MENTION_DIGEST_S)
        lines, *_ = pipe.execute()
    if not lines:
        return 0
    shown = lines[-DIGEST_MAX_LINES:]
    head = f"You were mentioned {len(lines)} times:" if len(lines) > 1 else ""
    more = [f"(and {len(lines) - len(shown)} earlier)"] if len(lines) > len(shown) else []
    text = "\n".join([head, *more, *shown]).strip()
    notify_offline_members(room_id=room_id, member_ids=[member_id], reason="mention", text=text)
    return len(lines)
