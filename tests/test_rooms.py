from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from rooms.models import Membership, Role, Room

pytestmark = pytest.mark.django_db


def test_create_room_makes_owner_membership_and_invite(client, owner):
    client.force_login(owner)
    response = client.post(reverse("room_create"), {"name": "Team sync", "slug": "", "capacity": 6})
    assert response.status_code == 302
    room = Room.objects.get()
    assert room.slug == "team-sync"
    assert response["Location"] == reverse("room", args=["team-sync"])
    assert room.memberships.get().role == Role.OWNER
    assert room.invites.get().is_usable()


def test_duplicate_slug_is_a_form_error(client, owner, room):
    client.force_login(owner)
    response = client.post(
        reverse("room_create"), {"name": "Other", "slug": room.slug, "capacity": 6}
    )
    assert response.status_code == 200
    assert "slug" in response.context["form"].errors
    assert Room.objects.count() == 1


@pytest.mark.parametrize(
    "data, field",
    [
        ({"name": "x" * 81, "slug": "long", "capacity": 6}, "name"),
        ({"name": "Ok", "slug": "bad slug!", "capacity": 6}, "slug"),
        ({"name": "Ok", "slug": "cap", "capacity": 1}, "capacity"),
        ({"name": "Ok", "slug": "cap", "capacity": 99}, "capacity"),
        ({"name": "!!!", "slug": "", "capacity": 6}, "slug"),
    ],
)
def test_bad_room_input_is_a_form_error(client, owner, data, field):
    client.force_login(owner)
    response = client.post(reverse("room_create"), data)
    assert response.status_code == 200
    assert field in response.context["form"].errors
    assert not Room.objects.exists()


def test_home_lists_only_my_rooms(client, owner, outsider, room):
    client.force_login(outsider)
    assert list(client.get(reverse("home")).context["rooms"]) == []
    client.force_login(owner)
    assert list(client.get(reverse("home")).context["rooms"]) == [room]


def test_non_member_cannot_see_private_room(client, outsider, room):
    client.force_login(outsider)
    response = client.get(reverse("room", args=[room.slug]))
    assert response.status_code == 404
    assert room.name not in response.content.decode()


def test_anonymous_is_sent_to_login(client, room):
    response = client.get(reverse("room", args=[room.slug]))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_member_sees_room_and_members(client, member, room):
    client.force_login(member.user)
    response = client.get(reverse("room", args=[room.slug]))
    assert response.status_code == 200
    names = [m["display_name"] for m in response.context["members"]]
    assert names == ["olivia", "marco"]
    # Only owners and moderators see the invite link.
    assert response.context["invite_url"] is None


def test_invite_link_asks_a_logged_in_user_and_joins_on_post(client, outsider, room, invite):
    client.force_login(outsider)
    url = reverse("invite", args=[invite.token])
    # Following the link (from any site: SameSite=Lax cookies travel on GETs) only asks.
    response = client.get(
        url, HTTP_REFERER="https://evil.example/", HTTP_SEC_FETCH_SITE="cross-site"
    )
    assert response.status_code == 200
    assert b'method="post"' in response.content and room.name.encode() in response.content
    assert not Membership.objects.filter(room=room, user=outsider).exists()
    response = client.post(url)
    assert response.status_code == 302 and response["Location"] == f"/r/{room.slug}/"
    assert Membership.objects.filter(room=room, user=outsider, role=Role.PARTICIPANT).exists()
    # Following it again goes to the room and does not duplicate the membership.
    assert client.get(url)["Location"] == f"/r/{room.slug}/"
    client.post(url)
    assert Membership.objects.filter(room=room, user=outsider).count() == 1


def test_joining_by_invite_needs_our_csrf_token(outsider, room, invite):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(outsider)
    response = client.post(reverse("invite", args=[invite.token]))
    assert response.status_code == 403
    assert not Membership.objects.filter(room=room, user=outsider).exists()


def test_guest_joins_by_invite_with_display_name(client, room, invite):
    url = reverse("invite", args=[invite.token])
    assert client.get(url).status_code == 200
    response = client.post(url, {"display_name": "  Gina  "})
    assert response.status_code == 302
    guest = Membership.objects.get(room=room, role=Role.GUEST)
    assert guest.display_name == "Gina" and guest.user is None
    assert client.get(reverse("room", args=[room.slug])).status_code == 200


def test_guest_empty_name_is_a_form_error(client, room, invite):
    response = client.post(reverse("invite", args=[invite.token]), {"display_name": "   "})
    assert response.status_code == 200
    assert "display_name" in response.context["form"].errors
    assert not Membership.objects.filter(role=Role.GUEST).exists()


def test_guest_refused_when_room_disallows_guests(client, room, invite):
    room.guest_access = False
    room.save()
    client.post(reverse("invite", args=[invite.token]), {"display_name": "Gina"})
    assert not Membership.objects.filter(role=Role.GUEST).exists()


@pytest.mark.parametrize("token", ["nope", "x" * 200, "%00"])
def test_bad_invite_token_is_a_clear_404(client, token):
    response = client.get(f"/i/{token}/")
    assert response.status_code == 404
    assert "invalid" in response.content.decode().lower()


def test_expired_and_revoked_invites_are_refused(client, outsider, room, invite):
    client.force_login(outsider)
    invite.expires_at = timezone.now() - timedelta(seconds=1)
    invite.save()
    assert client.get(reverse("invite", args=[invite.token])).status_code == 404
    invite.expires_at = timezone.now() + timedelta(days=1)
    invite.revoked_at = timezone.now()
    invite.save()
    assert client.get(reverse("invite", args=[invite.token])).status_code == 404
    assert not Membership.objects.filter(user=outsider).exists()


def test_owner_rotates_invite_and_old_link_stops_working(client, owner, room, invite):
    client.force_login(owner)
    response = client.post(reverse("invite_rotate", args=[room.slug]))
    assert response.status_code == 302
    invite.refresh_from_db()
    assert invite.revoked_at is not None
    assert room.invites.filter(revoked_at__isnull=True).count() == 1


def test_member_cannot_rotate_invite(client, member, room, invite):
    client.force_login(member.user)
    assert client.post(reverse("invite_rotate", args=[room.slug])).status_code == 404
    invite.refresh_from_db()
    assert invite.revoked_at is None


def test_admin_lists_and_searches_rooms_and_members(admin_client, room, member):
    response = admin_client.get("/admin/rooms/room/?q=stand")
    assert response.status_code == 200
    assert "Standup" in response.content.decode()
    response = admin_client.get("/admin/rooms/membership/?role__exact=participant")
    content = response.content.decode()
    assert "marco" in content and "olivia" not in content
