"""Text the product stores is refused at validation when it cannot be stored or misleads:
one rule (videochat.text) for chat bodies, names, room names and reasons; a page shows
a form error, a service raises bad_request, never a 500."""

import pytest
from django.urls import reverse

from moderation import services as moderation
from rooms import services
from rooms.forms import GuestJoinForm, RoomForm
from rooms.models import Membership, Role, Room
from videochat.errors import BadRequest
from videochat.text import text_problem

pytestmark = pytest.mark.django_db

BAD_NAMES = [
    "x\ud800y",  # lone surrogate: not encodable as UTF-8
    "a\x00b",  # NUL: PostgreSQL text cannot hold it
    "bell\x07",  # control character
    "admin\u202e",  # bidi override
    "two\nlines",  # a line break in a name
    "cr\rname",
    "tab\tname",
]


@pytest.mark.parametrize("value", ["hello", "Zoë Ångström", "李雷", "emoji 🎉", "a-b_c.d"])
def test_ordinary_text_from_any_script_is_accepted(value):
    assert text_problem(value) is None


@pytest.mark.parametrize("name", BAD_NAMES)
def test_guest_name_that_cannot_be_stored_or_misleads_is_a_form_error(name):
    form = GuestJoinForm({"display_name": name})
    assert not form.is_valid()
    assert "display_name" in form.errors


@pytest.mark.parametrize("name", ["bell\x07", "admin\u202e", "two\r\nlines"])
def test_guest_join_page_shows_a_form_error_not_a_500(client, room, invite, name):
    response = client.post(reverse("invite", args=[invite.token]), {"display_name": name})
    assert response.status_code == 200
    assert "display_name" in response.context["form"].errors
    assert not Membership.objects.filter(role=Role.GUEST).exists()


@pytest.mark.parametrize("name", BAD_NAMES)
def test_room_name_that_cannot_be_stored_or_misleads_is_a_form_error(owner, name):
    form = RoomForm({"name": name, "slug": "r1", "capacity": 4})
    assert not form.is_valid()
    assert "name" in form.errors


def test_room_name_with_a_line_break_is_refused_on_the_page(client, owner):
    client.force_login(owner)
    response = client.post(
        reverse("room_create"), {"name": "Standup\r\nFake line", "slug": "s", "capacity": 4}
    )
    assert response.status_code == 200
    assert "name" in response.context["form"].errors
    assert not Room.objects.filter(slug="s").exists()


@pytest.mark.parametrize("name", BAD_NAMES)
def test_services_refuse_bad_names_with_bad_request(owner, invite, name):
    with pytest.raises(BadRequest):
        services.room_create(owner=owner, name=name, slug="r2", capacity=4, guest_access=True)
    with pytest.raises(BadRequest):
        services.membership_join_as_guest(invite=invite, display_name=name)
    assert not Room.objects.filter(slug="r2").exists()
    assert not Membership.objects.filter(role=Role.GUEST).exists()


def test_a_ban_reason_with_a_bidi_override_is_bad_request(room, owner, member):
    owner_m = room.memberships.get(user=owner)
    with pytest.raises(BadRequest):
        moderation.ban_create(
            room_id=room.pk,
            actor_member_id=owner_m.pk,
            target_member_id=member.pk,
            reason="spam\u202e",
        )


def test_a_kick_reason_that_cannot_be_stored_is_bad_request(room, owner, member):
    from rooms.models import AuditLog

    owner_m = room.memberships.get(user=owner)
    with pytest.raises(BadRequest):
        moderation.member_kick(
            room_id=room.pk,
            actor_member_id=owner_m.pk,
            target_member_id=member.pk,
            reason="bye\ud800",
        )
    assert not AuditLog.objects.filter(action=AuditLog.Action.KICK).exists()
