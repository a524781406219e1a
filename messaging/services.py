"""Writes for chat: create (idempotent by client id) and hide."""

import re
from collections.abc import Sequence
from typing import NamedTuple, TypedDict, cast

import structlog
from asgiref.sync import async_to_sync
from django.db import DataError, IntegrityError, connection, transaction
from django.db.models import Field, Model
from django.utils import timezone

from deliveries.services import rooms_events_emit
from rooms import layer
from rooms.models import Membership
from videochat.dbturns import write_turn
from videochat.errors import AppError, BadRequest, Forbidden, NotFound
from videochat.text import text_check, text_normalize_newlines

from .conf import BODY_MAX_CHARS, CLIENT_ID_MAX_CHARS
from .errors import BodyTooLong, EmptyBody
from .mentions import mentions_notify
from .models import ChatCounter, Message
from .selectors import MessageDict, message_dict

log = structlog.get_logger(__name__)


class Created(TypedDict):
    message: MessageDict
    created: bool  # False: a resend; message is the original


def _clean(*, body: object, client_id: object) -> tuple[str, str]:
    if not isinstance(client_id, str) or not 1 <= len(client_id) <= CLIENT_ID_MAX_CHARS:
        raise BadRequest(f"client_id must be a string of 1 to {CLIENT_ID_MAX_CHARS} characters.")
    if not isinstance(body, str):
        raise BadRequest("body must be a string.")
    body = text_normalize_newlines(body).strip()
    if not body:
        raise EmptyBody()
    if len(body) > BODY_MAX_CHARS:
        raise BodyTooLong(limit=BODY_MAX_CHARS)
    # Refused here, alone: text the database cannot store failed the whole
    # group commit, every sender of the batch with it.
    text_check(body, field="body", multiline=True)
    text_check(client_id, field="client_id")
    return body, client_id


def _last_seqs_locked(*, room_ids: list[int]) -> dict[int, int]:
    """Each room's last seq, its counter row locked until the transaction ends.

    On PostgreSQL ``SELECT ... ORDER BY room_id FOR UPDATE``: every writer locks
    rooms in id order, so two servers writing batches for the same rooms wait
    for each other instead of deadlocking. SQLite transactions here are
    IMMEDIATE: the writer already holds the database's write lock. A room's
    row is created on its first message.
    """
    table = connection.ops.quote_name(ChatCounter._meta.db_table)
    room, last_seq = _column(ChatCounter, "room"), _column(ChatCounter, "last_seq")
    # Written out rather than built by the ORM: building this query and the
    # counters' update cost more CPU than running them (one batch per commit,
    # in the database thread that shares the event loop's GIL).
    sql = (
        f"SELECT {table}.{room}, {table}.{last_seq} FROM {table}"  # noqa: S608 - names from the model
        f" WHERE {table}.{room} IN ({', '.join(['%s'] * len(room_ids))})"
        f" ORDER BY {table}.{room} ASC"
        + (" FOR UPDATE" if connection.features.has_select_for_update else "")
    )

    def locked() -> dict[int, int]:
        with connection.cursor() as cursor:
            cursor.execute(sql, room_ids)
            return dict(cursor.fetchall())

    found = locked()
    missing = [room_id for room_id in room_ids if room_id not in found]
    if missing:
        for room_id in missing:
            try:
                with transaction.atomic():
                    ChatCounter.objects.create(room_id=room_id)
            except IntegrityError:
                pass  # another writer created it first; lock theirs
        found = locked()
    return found


def _counters_update(last_seq: dict[int, int]) -> None:
    """Set each of these rooms' last seq: one statement."""
    table = connection.ops.quote_name(ChatCounter._meta.db_table)
    room, seq = _column(ChatCounter, "room"), _column(ChatCounter, "last_seq")
    cases = " ".join(["WHEN %s THEN %s"] * len(last_seq))
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET {seq} = CASE {room} {cases} ELSE {seq} END"  # noqa: S608 - names from the model
            f" WHERE {room} IN ({', '.join(['%s'] * len(last_seq))})",
            [*(v for pair in last_seq.items() for v in pair), *last_seq],
        )


def _column(model: type[Model], name: str) -> str:
    """The quoted column of a model's field, for the hand-written statements."""
    field = model._meta.get_field(name)
    assert isinstance(field, Field)
    return connection.ops.quote_name(field.column)


def _resent_ids(*, keys: list[tuple[int, int, str]]) -> list[int]:
    """Ids of the messages already written under these (room, author, client id) keys.

    One index probe per key: the batch's keys joined to the client-id index.
    Three IN lists (rooms x authors x client ids) made SQLite probe every
    combination, 32,000 lookups for a batch of 200 from 40 authors; the ORM has
    no join to a list of values.
    """
    table = connection.ops.quote_name(Message._meta.db_table)
    room, author, client_id = (_column(Message, f) for f in ("room", "author", "client_id"))
    values = ", ".join(["(%s, %s, %s)"] * len(keys))
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT m.id FROM (VALUES {values}) AS k JOIN {table} AS m"  # noqa: S608 - names from the model
            f" ON m.{room} = k.column1 AND m.{author} = k.column2 AND m.{client_id} = k.column3",
            [value for key in keys for value in key],
        )
        return [row[0] for row in cursor.fetchall()]


def _insert_rows(rows: Sequence[tuple[int, int, int, str, str, str | None]]) -> None:
    """Insert new messages with one multi-row INSERT statement.

    Not the ORM's bulk_create, which prepared every field of every row (about
    ten times the cost per message), nor executemany, which steps SQLite once
    per row and so gives up and waits for the GIL once per row while the event
    loop thread is busy (bench/chat_fanout.py measures both).
    """
    fields = ["room", "seq", "author", "client_id", "body", "created_at"]
    table = connection.ops.quote_name(Message._meta.db_table)
    columns = ", ".join(_column(Message, f) for f in fields)
    values = ", ".join(["(%s, %s, %s, %s, %s, %s)"] * len(rows))
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} ({columns}) VALUES {values}",  # noqa: S608 - names from the model
            [value for row in rows for value in row],
        )


class NewMessage(TypedDict):
    room_id: int
    author_id: int
    body: object
    client_id: object


class _Valid(NamedTuple):
    """An item that passed validation, with its place in the batch."""

    position: int
    room_id: int
    author_id: int
    body: str
    client_id: str


def messages_create(*, items: list[NewMessage]) -> list[Created | AppError]:
    """Write many messages in one transaction (group commit); one result per item.

    A result is Created (the new message, or the original for a client id
    already used) or the AppError that item failed with. The caller
    acknowledges only after this returns, i.e. after the commit: an
    acknowledged message is durable. Three steps, each settling the items it
    can: validate (content), write (membership, resends, seq, insert),
    announce (webhooks and mentions, queued on commit).
    """
    results: list[Created | AppError | None] = [None] * len(items)
    valid = _validate(items=items, results=results)
    if valid:
        # A handful of statements per batch, however many rooms and messages
        # it holds: the database thread shares the event loop's GIL.
        with write_turn(), transaction.atomic():
            new_by_room = _write(valid=valid, results=results)
            if new_by_room:
                _announce_posted(new_by_room=new_by_room)
    return cast(list[Created | AppError], results)


def _validate(*, items: list[NewMessage], results: list[Created | AppError | None]) -> list[_Valid]:
    """The items whose content can be stored; the others get their error."""
    valid = []
    for i, item in enumerate(items):
        try:
            body, client_id = _clean(body=item["body"], client_id=item["client_id"])
        except AppError as exc:
            results[i] = exc
            continue
        valid.append(_Valid(i, item["room_id"], item["author_id"], body, client_id))
    return valid


def _write(
    *, valid: list[_Valid], results: list[Created | AppError | None]
) -> dict[int, list[MessageDict]]:
    """Write the new messages, inside the caller's transaction; returns them by room.

    An author no longer a member fails alone; a resend gets its original. The
    room's counter row is held until the commit, so seq order is commit order,
    and a resend racing its original (two sockets of one tab) finds it under
    the same lock.
    """
    names = _author_names(valid=valid)
    entries = []
    for entry in valid:
        if (entry.author_id, entry.room_id) in names:
            entries.append(entry)
        else:  # a membership removed since the socket connected fails alone
            results[entry.position] = Forbidden("You are no longer a member of this room.")
    if not entries:
        return {}
    last_seq = _last_seqs_locked(room_ids=sorted({e.room_id for e in entries}))
    known = _originals(keys=[(e.room_id, e.author_id, e.client_id) for e in entries])
    now = timezone.now()
    stamp = connection.ops.adapt_datetimefield_value(now)
    created_at = now.isoformat()  # one timestamp per commit
    rows = []
    new: dict[int, list[MessageDict]] = {}
    for i, room_id, author_id, body, client_id in entries:  # arrival order
        key = (room_id, author_id, client_id)
        if key in known:
            results[i] = Created(message=known[key], created=False)
            continue
        last_seq[room_id] += 1
        rows.append((room_id, last_seq[room_id], author_id, client_id, body, stamp))
        message = MessageDict(
            seq=last_seq[room_id],
            client_id=client_id,
            author_id=author_id,
            author_name=names[(author_id, room_id)],
            body=body,
            created_at=created_at,
        )
        known[key] = message  # the same client id twice in one batch is one message
        new.setdefault(room_id, []).append(message)
        results[i] = Created(message=message, created=True)
    if rows:
        _insert_rows(rows)
        _counters_update({r: last_seq[r] for r in new})
    return new


def _author_names(*, valid: list[_Valid]) -> dict[tuple[int, int], str]:
    """(membership id, room id) -> display name, for the authors still members."""
    authors = sorted({entry.author_id for entry in valid})
    table = connection.ops.quote_name(Membership._meta.db_table)
    pk, room, name = (_column(Membership, f) for f in ("id", "room", "display_name"))
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {pk}, {room}, {name} FROM {table}"  # noqa: S608 - names from the model
            f" WHERE {pk} IN ({', '.join(['%s'] * len(authors))})",
            authors,
        )
        return {(pk, room_id): name for pk, room_id, name in cursor.fetchall()}


def _originals(*, keys: list[tuple[int, int, str]]) -> dict[tuple[int, int, str], MessageDict]:
    """The messages already written under these (room, author, client id) keys."""
    resent = _resent_ids(keys=keys)
    if not resent:
        return {}
    return {
        (m.room_id, m.author_id, m.client_id): message_dict(m)
        for m in Message.objects.select_related("author").filter(pk__in=resent).order_by()
    }


_MENTION_RE = re.compile(r"@([\w.@+-]{1,40})")


def _announce_posted(*, new_by_room: dict[int, list[MessageDict]]) -> None:
    """Webhooks for each new message and email to offline members it mentions.

    Called inside the write's transaction: the deliveries are enqueued on
    commit, so a message that rolls back announces nothing.
    """
    rooms_events_emit(
        events_by_room={
            room_id: [("message.posted", dict(message)) for message in messages]
            for room_id, messages in new_by_room.items()
        }
    )
    for room_id, messages in new_by_room.items():
        for message in messages:
            names = {n.rstrip(".").lower() for n in _MENTION_RE.findall(message["body"])}
            if not names:
                continue
            mentioned = [
                pk
                for pk, name in Membership.objects.filter(room_id=room_id, user__isnull=False)
                .exclude(pk=message["author_id"])
                .values_list("pk", "display_name")
                if name.lower() in names
            ]
            if mentioned:
                # Throttled per recipient and room: a burst of mentions is one
                # mail now and one digest later, not a mail per message.
                mentions_notify(
                    room_id=room_id,
                    member_ids=mentioned,
                    line=f"{message['author_name']} mentioned you: {message['body']}",
                )


def message_create_alone(*, item: NewMessage) -> Created | AppError:
    """One message in a transaction of its own, after the batch it was in failed.

    Validation refuses what cannot be stored, so a batch should not fail for
    its content; if one still does (a driver rule validation does not know),
    writing each item alone makes the bad one fail by itself. A data error on
    a lone item is that item's content: a permanent ``bad_request``, so the
    sender's outbox stops resending it. Anything else (the database is down)
    is raised: transient, the client resends later.
    """
    try:
        (result,) = messages_create(items=[item])
    except (DataError, IntegrityError, ValueError) as exc:  # UnicodeEncodeError is a ValueError
        log.warning("chat.item_unstorable", room=item["room_id"], error=repr(exc)[:200])
        return BadRequest("This message cannot be stored.", field="body")
    return result


def message_create(*, room_id: int, author_id: int, body: object, client_id: object) -> Created:
    """Write one message, or return the original for a client id already used."""
    (result,) = messages_create(
        items=[NewMessage(room_id=room_id, author_id=author_id, body=body, client_id=client_id)]
    )
    if isinstance(result, AppError):
        raise result
    return result


def _broadcast_sync(room_id: int, frame: dict) -> None:
    # At most once: the durable record decides; a lost wake-up is repaired by
    # the client's next sync. So a channel-layer failure is logged, not raised.
    try:
        async_to_sync(layer.to_room)(room_id, frame)
    except Exception:  # noqa: BLE001
        log.warning("chat.broadcast_failed", room=room_id, frame_type=frame.get("type"))


def message_hide(*, room_id: int, seq: int, by_member_id: int) -> MessageDict:
    """Hide a message for moderation; its seq slot stays, served as {seq, hidden}."""
    with transaction.atomic():
        message = Message.objects.select_for_update().filter(room_id=room_id, seq=seq).first()
        if message is None:
            raise NotFound("No such message.", seq=seq)
        if message.hidden_at is None:
            message.hidden_at = timezone.now()
            message.hidden_by_id = by_member_id
            message.save(update_fields=["hidden_at", "hidden_by"])
            transaction.on_commit(
                lambda: _broadcast_sync(room_id, {"type": "chat.hidden", "seq": seq})
            )
    return message_dict(message)
