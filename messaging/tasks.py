"""Celery tasks of the chat: the mention digest (messaging.mentions)."""

from celery import shared_task

from . import mentions


@shared_task(name=mentions.DIGEST_TASK, ignore_result=True, acks_late=True)
def mention_digest_send(room_id: int, member_id: int) -> int:
    # Idempotent enough for acks_late: a redelivery finds the lines taken and mails nothing.
    return mentions.mention_digest_send(room_id=room_id, member_id=member_id)
