"""The admin's call-quality page: a room's calls and one call's timeline as inline
SVG plots per peer pair, from the call_stats samples in the real MongoDB-protocol
server; staff only; MongoDB down is a message, not an error page."""

import time
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.test import Client

from rooms import telemetry
from rooms.permissions import MODERATORS_GROUP
from tests.conftest import make_user
from videochat import mongo
from videochat.devstack import free_port

pytestmark = pytest.mark.django_db


def sample(peer, i, **extra):
    return telemetry.sample_parse(
        {
            "peer": peer,
            "t": int(time.time() * 1000) + 2000 * i,
            "rtt": 40.0 + i,
            "loss_in": 0.01 * i,
            "loss_out": 0.02 * i,
            "send_kbps": 800 - 50 * i,
            "recv_kbps": 700,
            "bw_out": 1500,
            "fps_in": 30 - i,
            "decoded": 60,
            "freeze_ms": 0 if i < 3 else 400,
            "freezes": 0 if i < 3 else 1,
            "level": "full" if i < 2 else "reduced",
            "relay": True,
            **extra,
        },
        index=0,
    )


def store(call: str, from_peer: str, to_peer: str, n: int, start, events=None) -> None:
    docs = []
    for i in range(n):
        extra = {"events": events} if (events and i == 2) else {}
        doc = telemetry.documents_build(
            room="standup", call=call, from_peer=from_peer, samples=[sample(to_peer, i, **extra)]
        )[0]
        doc["at"] = start + timedelta(seconds=2 * i)
        docs.append(doc)
    telemetry.collection().insert_many(docs)


@pytest.fixture
def stats_db(deadletter_db):
    mongo._indexed.clear()
    return deadletter_db


@pytest.fixture
def staff(django_user_model):
    user = make_user(django_user_model, "sam", is_staff=True)
    user.groups.add(Group.objects.get(name=MODERATORS_GROUP))
    client = Client()
    client.force_login(user)
    return client


def test_the_room_page_links_to_call_quality_and_it_plots_each_pair(room, staff, stats_db):
    start = telemetry.now() - timedelta(minutes=5)
    store("call-1", "alicepeer1", "bobpeer222", 5, start, events=["step:reduced:loss"])
    store("call-1", "bobpeer222", "alicepeer1", 5, start)
    store("call-0", "alicepeer1", "bobpeer222", 2, start - timedelta(hours=1))
    change = staff.get(f"/admin/rooms/room/{room.pk}/change/")
    assert change.status_code == 200
    url = f"/admin/rooms/room/{room.pk}/quality/"
    assert f'href="{url}"' in change.content.decode() and "Call quality" in change.content.decode()
    page = staff.get(url)
    assert page.status_code == 200
    html = page.content.decode()
    # The newest call is shown; both calls can be chosen.
    assert '<option value="call-1" selected>' in html and '<option value="call-0"' in html
    assert "A (alicepee) and B (bobpeer2)" in html
    # RTT, loss, bitrate, video, freezes, send level: one SVG each for the one pair.
    assert html.count("<svg width") == 6
    for title in ("Round-trip time, A–B", "Packet loss, A–B", "Bitrate, A–B", "Freezes, A–B"):
        assert f'aria-label="{title}"' in html
    assert "A step:reduced:loss" in html  # the step marked on the level chart
    assert "<code>step:reduced:loss</code>" in html  # and listed in words
    assert html.count("<polyline") >= 12
    older = staff.get(url, {"call": "call-0"}).content.decode()
    assert '<option value="call-0" selected>' in older and older.count("<svg width") == 6
    assert staff.get(url, {"call": "nope"}).status_code == 404


def test_a_room_without_samples_says_so(room, staff, stats_db):
    html = staff.get(f"/admin/rooms/room/{room.pk}/quality/").content.decode()
    assert 'id="quality-empty"' in html


def test_mongodb_down_is_a_message_not_an_error(room, staff, stats_db, settings):
    settings.MONGODB_URI = f"mongodb://127.0.0.1:{free_port()}/"
    page = staff.get(f"/admin/rooms/room/{room.pk}/quality/")
    assert page.status_code == 200
    assert 'id="quality-unavailable"' in page.content.decode()


def test_only_staff_who_may_view_rooms_see_it(room, owner, stats_db, django_user_model):
    client = Client()
    client.force_login(owner)  # the room's owner, not staff
    assert client.get(f"/admin/rooms/room/{room.pk}/quality/").status_code == 302
    bare = make_user(django_user_model, "stan", is_staff=True)  # staff without room rights
    client.force_login(bare)
    assert client.get(f"/admin/rooms/room/{room.pk}/quality/").status_code == 403
