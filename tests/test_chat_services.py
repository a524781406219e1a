"""Chat services and selectors against a real database (also run on PostgreSQL)."""

import re
import threading

import pytest
from django.db import connection

from messaging import selectors, services
from messaging.conf import BODY_MAX_CHARS
from messaging.errors import BadSeq, BodyTooLong, EmptyBody
from messaging.models import Message
from videochat.errors import BadRequest

pytestmark = pytest.mark.django_db


def send(room, author, body="hi", client_id="c1"):
    return services.message_create(
        room_id=room.pk, author_id=author.pk, body=body, client_id=client_id
    )


@pytest.fixture
def owner_m(room, owner):
    return room.memberships.get(user=owner)


def test_sequence_numbers_are_dense_per_room(room, owner_m, member):
    seqs = [
        send(room, a, client_id=f"c{i}")["message"]["seq"]
        for i, a in enumerate([owner_m, member, owner_m])
    ]
    assert seqs == [1, 2, 3]


def test_resend_with_same_client_id_returns_the_original(room, owner_m):
    first = send(room, owner_m, body="hello", client_id="abc")
    again = send(room, owner_m, body="hello (edited resend)", client_id="abc")
    assert first["created"] and not again["created"]
    assert again["message"] == first["message"]
    assert Message.objects.count() == 1


def test_same_client_id_from_another_author_is_another_message(room, owner_m, member):
    a = send(room, owner_m, client_id="same")["message"]
    b = send(room, member, client_id="same")["message"]
    assert (a["seq"], b["seq"]) == (1, 2)


@pytest.mark.parametrize("body", ["", "   \n\t "])
def test_empty_body_is_refused(room, owner_m, body):
    with pytest.raises(EmptyBody):
        send(room, owner_m, body=body)


@pytest.mark.parametrize(
    "body",
    ["x\ud800y", "a\x00b", "bell\x07", "esc\x1b[2J", "\u202egnp.exe", "iso\u2066late"],
)
def test_text_that_cannot_be_stored_or_misleads_is_refused_at_validation(room, owner_m, body):
    # A lone surrogate or NUL failed the INSERT (NUL on PostgreSQL only): refused
    # before the database on both, so the batch it would share never fails.
    with pytest.raises(BadRequest) as info:
        send(room, owner_m, body=body)
    assert info.value.code == "bad_request"
    assert Message.objects.count() == 0


def test_newlines_and_tabs_stay_and_a_carriage_return_becomes_a_newline(room, owner_m):
    message = send(room, owner_m, body="one\r\ntwo\tthree\rfour")["message"]
    assert message["body"] == "one\ntwo\tthree\nfour"


def test_body_limit_is_inclusive(room, owner_m):
    assert send(room, owner_m, body="x" * BODY_MAX_CHARS)["created"]
    with pytest.raises(BodyTooLong) as info:
        send(room, owner_m, body="x" * (BODY_MAX_CHARS + 1), client_id="c2")
    assert info.value.data == {"limit": BODY_MAX_CHARS}


@pytest.mark.parametrize("client_id", ["", "x" * 65, 5, None])
def test_bad_client_id_is_refused(room, owner_m, client_id):
    with pytest.raises(BadRequest):
        send(room, owner_m, client_id=client_id)


def test_messages_after_pages_in_order(room, owner_m):
    for i in range(7):
        send(room, owner_m, body=f"m{i}", client_id=f"c{i}")
    first = selectors.messages_after(room_id=room.pk, after_seq=0, limit=3)
    assert [m["seq"] for m in first["messages"]] == [1, 2, 3] and first["has_more"]
    rest = selectors.messages_after(room_id=room.pk, after_seq=3, limit=10)
    assert [m["body"] for m in rest["messages"]] == ["m3", "m4", "m5", "m6"]
    assert not rest["has_more"] and rest["head"] == 7


def test_messages_after_a_future_seq_is_bad_seq(room, owner_m):
    send(room, owner_m)
    assert selectors.messages_after(room_id=room.pk, after_seq=1)["messages"] == []
    with pytest.raises(BadSeq) as info:
        selectors.messages_after(room_id=room.pk, after_seq=2)
    assert info.value.data == {"head": 1}


def test_history_pages_backwards(room, owner_m):
    for i in range(5):
        send(room, owner_m, body=f"m{i}", client_id=f"c{i}")
    newest = selectors.messages_before(room_id=room.pk, before_seq=None, limit=2)
    assert [m["seq"] for m in newest["messages"]] == [4, 5] and newest["has_more"]
    older = selectors.messages_before(room_id=room.pk, before_seq=4, limit=5)
    assert [m["seq"] for m in older["messages"]] == [1, 2, 3] and not older["has_more"]


def test_hidden_message_keeps_its_slot_without_content(room, owner_m, member):
    send(room, member, body="rude", client_id="r")
    send(room, owner_m, body="ok", client_id="o")
    hidden = services.message_hide(room_id=room.pk, seq=1, by_member_id=owner_m.pk)
    assert hidden == {"seq": 1, "hidden": True}
    served = selectors.messages_after(room_id=room.pk, after_seq=0)["messages"]
    assert served[0] == {"seq": 1, "hidden": True}
    assert served[1]["body"] == "ok"
    assert "rude" not in str(selectors.messages_before(room_id=room.pk, before_seq=None))
    # A resend of the hidden message does not bring its body back.
    assert send(room, member, body="rude", client_id="r")["message"] == {"seq": 1, "hidden": True}


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_get_distinct_dense_seqs(room, owner_m, member):
    errors = []

    def writer(author, prefix):
        try:
            for i in range(10):
                send(room, author, body="x", client_id=f"{prefix}{i}")
                send(room, author, body="x", client_id=f"{prefix}{i}")  # resend
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=writer, args=(a, p))
        for a, p in [(owner_m, "a"), (member, "b"), (owner_m, "c")]
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    seqs = sorted(Message.objects.filter(room=room).values_list("seq", flat=True))
    assert seqs == list(range(1, 31))


def test_group_commit_gives_each_item_its_own_result(room, owner_m, member):
    from messaging.services import NewMessage

    items = [
        NewMessage(room_id=room.pk, author_id=owner_m.pk, body="a", client_id="a"),
        NewMessage(room_id=room.pk, author_id=member.pk, body="", client_id="b"),
        NewMessage(room_id=room.pk, author_id=member.pk, body="c", client_id="c"),
        NewMessage(room_id=room.pk, author_id=owner_m.pk, body="a again", client_id="a"),
    ]
    results = services.messages_create(items=items)
    assert results[0]["created"] and results[0]["message"]["seq"] == 1
    assert isinstance(results[1], EmptyBody)
    assert results[2]["message"]["seq"] == 2 and results[2]["message"]["author_name"] == "marco"
    # The same client id twice in one batch is one message.
    assert not results[3]["created"] and results[3]["message"] == results[0]["message"]
    assert Message.objects.count() == 2


def test_a_removed_author_fails_alone_in_a_batch(room, owner_m, member):
    from messaging.services import NewMessage
    from videochat.errors import Forbidden

    gone_id = member.pk
    member.delete()
    results = services.messages_create(
        items=[
            NewMessage(room_id=room.pk, author_id=gone_id, body="x", client_id="g"),
            NewMessage(room_id=room.pk, author_id=owner_m.pk, body="y", client_id="o"),
        ]
    )
    assert isinstance(results[0], Forbidden)
    assert results[1]["created"] and results[1]["message"]["seq"] == 1


def test_the_resend_lookup_probes_the_client_id_index_once_per_message(room, owner_m, member):
    """A send costs the same in a room with a long history (found by bench/chat_fanout.py).

    With the model's (room, seq) ordering SQLite answered the "already sent?"
    lookup by walking every message of the room; with IN lists of rooms,
    authors and client ids it probed every combination of the three. The
    batch's keys are joined to the (room, author, client_id) unique index.
    """
    from django.test.utils import CaptureQueriesContext

    from messaging.services import NewMessage

    send(room, owner_m, client_id="first")
    with CaptureQueriesContext(connection) as queries:
        results = services.messages_create(
            items=[
                NewMessage(room_id=room.pk, author_id=owner_m.pk, body="again", client_id="first"),
                NewMessage(room_id=room.pk, author_id=member.pk, body="new", client_id="first"),
            ]
        )
    assert [r["created"] for r in results] == [False, True]
    sqls = [q["sql"] for q in queries.captured_queries]
    lookups = [sql for sql in sqls if "VALUES" in sql and "JOIN" in sql]
    assert len(lookups) == 1, sqls
    assert "ORDER BY" not in lookups[0]
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN QUERY PLAN " + lookups[0])
            plan = [str(row[-1]) for row in cursor.fetchall()]
        # The keys are scanned; the messages table only searched by the index.
        probes = [step for step in plan if step.startswith(("SEARCH m", "SCAN m"))]
        assert len(probes) == 1 and probes[0].startswith("SEARCH m"), plan
        assert "client_id=?" in probes[0], plan


def test_a_batch_locks_room_counters_in_room_id_order(room, owner, owner_m):
    """Two servers writing batches for the same rooms lock them in one order.

    In arrival order, server A could lock room 1 then wait for room 2 while
    server B held room 2 and waited for room 1: PostgreSQL aborts one with a
    deadlock after a second (found by bench/chat_fanout.py with two daphne
    processes on PostgreSQL).
    """
    from django.test.utils import CaptureQueriesContext

    from rooms import services as room_services

    other = room_services.room_create(
        owner=owner, name="Other", slug="other-room", capacity=6, guest_access=False
    )
    other_m = other.memberships.get(user=owner)
    first, second = sorted([(room, owner_m), (other, other_m)], key=lambda pair: -pair[0].pk)
    items = [
        services.NewMessage(room_id=r.pk, author_id=m.pk, body="hi", client_id=f"o{r.pk}")
        for r, m in (first, second)  # the higher room id arrives first
    ]
    with CaptureQueriesContext(connection) as queries:
        results = services.messages_create(items=items)
    assert all(r["created"] for r in results)
    locks = [
        q["sql"]
        for q in queries.captured_queries
        if q["sql"].startswith("SELECT") and "messaging_chatcounter" in q["sql"]
    ]
    # One locking read for every room of the batch, in room id order.
    assert locks and all(
        # room_id is the first selected column: Django may order by its position.
        re.search(r'ORDER BY (1|"messaging_chatcounter"\."room_id") ASC', sql)
        for sql in locks
    ), locks
    assert all(str(room.pk) in sql and str(other.pk) in sql for sql in locks), locks
    if connection.features.has_select_for_update:
        assert all("FOR UPDATE" in sql for sql in locks), locks


@pytest.mark.django_db(transaction=True)
def test_sqlite_writers_take_turns_and_the_waiter_wakes_when_the_turn_ends():
    from videochat.dbturns import write_turn

    got_turn = threading.Event()

    def other_writer():
        with write_turn():
            got_turn.set()

    with write_turn():
        waiter = threading.Thread(target=other_writer)
        waiter.start()
        if connection.vendor == "sqlite":
            assert not got_turn.wait(0.5)  # it waits while we hold the turn
        else:
            assert got_turn.wait(5)  # other databases lock rows: no turns
    assert got_turn.wait(5)  # and gets it once we let go
    waiter.join(5)
