"""Server pages with the plain Django client: the landing page, invites through every way in,
``/join/``, the room form, and the room settings page. Bad input is a form error, never a 500."""

import pytest
from django.contrib.auth.models import User
from django.urls import reverse
from django.utils import timezone

from rooms import services
from rooms.models import AuditLog, Ban, Membership, Role, Room
from tests.conftest import PASSWORD, make_user

pytestmark = pytest.mark.django_db


def invite_path(room) -> str:
    return reverse("invite", args=[room.invites.first().token])


# --- landing -----------------------------------------------------------------


def test_a_visitor_gets_the_landing_page_with_sign_up_log_in_and_join(client):
    response = client.get("/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "Huddle" in page
    assert f'href="{reverse("signup")}"' in page
    assert f'href="{reverse("login")}"' in page
    assert f'action="{reverse("join")}"' in page and 'name="link"' in page


def test_a_logged_in_user_keeps_the_room_list(client, owner, room):
    client.force_login(owner)
    response = client.get("/")
    assert response.templates[0].name == "rooms/home.html"
    assert [r.slug for r in response.context["rooms"]] == ["standup"]
    assert f'href="{reverse("room_settings", args=["standup"])}"' in response.content.decode()


def test_the_room_list_links_settings_only_where_you_moderate(client, room, member):
    client.force_login(member.user)
    page = client.get("/").content.decode()
    assert reverse("room", args=["standup"]) in page
    assert reverse("room_settings", args=["standup"]) not in page


# --- /join/ --------------------------------------------------------------------


@pytest.mark.parametrize(
    "shape",
    [
        "http://testserver{path}",
        "https://elsewhere.example{path}?utm=1#x",
        "  http://testserver{path}  ",
        "testserver{path}",
        "{path}",
        "{token}",
        "http://testserver/i/{token}",
    ],
)
def test_a_pasted_invite_link_or_code_leads_to_its_invite_page(client, room, shape):
    token = room.invites.first().token
    link = shape.format(path=invite_path(room), token=token)
    response = client.get(reverse("join"), {"link": link})
    assert response.status_code == 302
    assert response["Location"] == invite_path(room)


@pytest.mark.parametrize(
    "link",
    [
        "",
        "   ",
        "hello world",
        "https://testserver/r/standup/",
        "https://testserver/i/nope/",
        "x" * 501,
        "\x00\x01",
        "/i/../../admin/",
    ],
)
def test_a_bad_join_link_is_a_form_error(client, room, link):
    response = client.get(reverse("join"), {"link": link})
    assert response.status_code == 200
    assert response.context["form"].errors["link"]


def test_a_join_link_that_is_not_utf8_is_a_form_error(client):
    response = client.get(reverse("join") + "?link=%ED%A0%80%00")
    assert response.status_code == 200
    assert response.context["form"].errors["link"]


def test_a_revoked_invite_link_is_a_form_error(client, room):
    link = invite_path(room)
    services.invite_revoke(invite=room.invites.first())
    response = client.get(reverse("join"), {"link": link})
    assert response.status_code == 200
    assert "invalid, expired or revoked" in response.context["form"].errors["link"][0]


def test_the_join_page_without_a_link_is_an_empty_form(client):
    response = client.get(reverse("join"))
    assert response.status_code == 200
    assert not response.context["form"].is_bound


# --- invites through sign up and log in ----------------------------------------


def test_invite_then_sign_up_lands_in_the_room_as_a_member(client, room):
    page = client.get(invite_path(room)).content.decode()
    signup_url = f"{reverse('signup')}?next={invite_path(room)}"
    assert f'href="{signup_url}"' in page
    form = client.get(signup_url)
    assert "Sign up to join Standup" in form.content.decode()
    response = client.post(
        signup_url,
        {
            "username": "nina",
            "password1": PASSWORD,
            "password2": PASSWORD,
            "next": invite_path(room),
        },
    )
    assert response.status_code == 302 and response["Location"] == reverse("room", args=["standup"])
    nina = User.objects.get(username="nina")
    assert Membership.objects.get(room=room, user=nina).role == Role.PARTICIPANT
    assert client.get(response["Location"]).status_code == 200


def test_invite_then_log_in_lands_in_the_room_as_a_member(client, room, member_user):
    login_url = f"{reverse('login')}?next={invite_path(room)}"
    assert f'href="{login_url}"' in client.get(invite_path(room)).content.decode()
    assert "Log in to join Standup" in client.get(login_url).content.decode()
    response = client.post(
        login_url, {"username": "marco", "password": PASSWORD, "next": invite_path(room)}
    )
    assert response.status_code == 302 and response["Location"] == reverse("room", args=["standup"])
    assert Membership.objects.filter(room=room, user=member_user).exists()


def test_invite_then_sign_up_then_log_in_instead_keeps_the_invite(client, room, member_user):
    signup_url = f"{reverse('signup')}?next={invite_path(room)}"
    page = client.get(signup_url).content.decode()
    login_url = f"{reverse('login')}?next={invite_path(room)}"
    assert f'href="{login_url}"' in page
    response = client.post(
        login_url, {"username": "marco", "password": PASSWORD, "next": invite_path(room)}
    )
    assert response["Location"] == reverse("room", args=["standup"])


def test_a_member_logging_in_through_the_invite_again_just_goes_in(client, room, member):
    response = client.post(
        reverse("login"), {"username": "marco", "password": PASSWORD, "next": invite_path(room)}
    )
    assert response["Location"] == reverse("room", args=["standup"])
    assert Membership.objects.filter(room=room, user=member.user).count() == 1


def test_a_banned_account_logging_in_through_the_invite_is_told_and_not_let_in(
    client, room, member, owner
):
    Ban.objects.create(room=room, user=member.user, display_name="marco", banned_by=owner)
    response = client.post(
        reverse("login"), {"username": "marco", "password": PASSWORD, "next": invite_path(room)}
    )
    assert response.status_code == 403
    assert "banned" in response.content.decode().lower()


def test_a_wrong_password_through_the_invite_is_a_form_error_and_keeps_the_invite(client, room):
    response = client.post(
        reverse("login"), {"username": "marco", "password": "nope", "next": invite_path(room)}
    )
    assert response.status_code == 200
    assert response.context["form"].non_field_errors()
    assert response.context["invite_room"] == room


def test_a_room_link_logged_out_comes_back_to_the_room_after_log_in(client, room, member):
    response = client.get(reverse("room", args=["standup"]))
    assert response.status_code == 302
    login_url = response["Location"]
    response = client.post(
        login_url, {"username": "marco", "password": PASSWORD, "next": "/r/standup/"}
    )
    assert response["Location"] == "/r/standup/"


@pytest.mark.parametrize(
    "next_url",
    ["https://evil.example/", "//evil.example/i/x/", "javascript:alert(1)", "/\\evil.example"],
)
def test_an_unsafe_next_is_ignored_by_log_in_and_sign_up(client, owner, next_url):
    response = client.post(
        reverse("login"), {"username": "olivia", "password": PASSWORD, "next": next_url}
    )
    assert response["Location"] == reverse("home")
    client.logout()
    response = client.post(
        reverse("signup"),
        {"username": "nina", "password1": PASSWORD, "password2": PASSWORD, "next": next_url},
    )
    assert response["Location"] == reverse("home")
    assert "evil" not in client.get(reverse("signup") + f"?next={next_url}").content.decode()


def test_a_dead_invite_in_next_is_a_plain_log_in(client, room, member_user):
    path = invite_path(room)
    services.invite_revoke(invite=room.invites.first())
    response = client.post(
        reverse("login"), {"username": "marco", "password": PASSWORD, "next": path}
    )
    # Django's own next: the invite page, which says the link is no longer valid.
    assert response["Location"] == path
    assert client.get(path).status_code == 404
    assert not Membership.objects.filter(room=room, user=member_user).exists()


def test_sign_up_while_logged_in_follows_a_safe_next(client, owner, room):
    client.force_login(owner)
    response = client.get(reverse("signup") + f"?next={invite_path(room)}")
    assert response["Location"] == invite_path(room)


# --- the room form ---------------------------------------------------------------


def test_new_rooms_let_guests_in_by_default(client, owner):
    client.force_login(owner)
    form = client.get(reverse("room_create")).context["form"]
    assert form["guest_access"].value() is True
    room = services.room_create(
        owner=owner, name="Plain", slug="plain", capacity=4, guest_access=Room().guest_access
    )
    assert room.guest_access is True


def test_the_address_help_text_shows_the_address_pattern(client, owner):
    client.force_login(owner)
    page = client.get(reverse("room_create")).content.decode()
    assert "/r/&lt;address&gt;/" in page


def test_an_unchecked_guest_box_makes_a_room_without_guests(client, owner):
    client.force_login(owner)
    client.post(reverse("room_create"), {"name": "Private", "slug": "", "capacity": 4})
    assert Room.objects.get(slug="private").guest_access is False


def test_guest_join_is_refused_when_the_owner_turned_guests_off(client, room):
    room.guest_access = False
    room.save()
    page = client.get(invite_path(room)).content.decode()
    assert "Join as guest" not in page
    response = client.post(invite_path(room), {"display_name": "Gus"})
    assert response.status_code == 200
    assert not Membership.objects.filter(room=room, display_name="Gus").exists()


# --- the room settings page ------------------------------------------------------


def settings_url(room) -> str:
    return reverse("room_settings", args=[room.slug])


def settings_post(client, room, **changes):
    data = {"name": room.name, "guest_access": "on" if room.guest_access else ""}
    data.update(changes)
    return client.post(settings_url(room), {k: v for k, v in data.items() if v is not None})


def test_the_owner_sees_invite_webhooks_and_members_on_the_settings_page(
    client, owner, room, member
):
    client.force_login(owner)
    response = client.get(settings_url(room))
    assert response.status_code == 200
    page = response.content.decode()
    token = room.invites.first().token
    assert f'value="http://testserver/i/{token}/"' in page
    assert 'data-copy="invite-link"' in page and "js/copy-button.js" in page
    assert f'href="{reverse("webhooks", args=[room.slug])}"' in page
    rows = {m["display_name"]: m for m in response.context["members"]}
    assert rows["olivia"]["role"] == Role.OWNER and rows["marco"]["role"] == Role.PARTICIPANT
    assert not rows["marco"]["banned"] and rows["marco"]["kicked_until"] is None


def test_a_moderator_gets_the_settings_page_without_webhooks(client, room, member):
    Membership.objects.filter(pk=member.pk).update(role=Role.MODERATOR)
    client.force_login(member.user)
    response = client.get(settings_url(room))
    assert response.status_code == 200
    assert reverse("webhooks", args=[room.slug]) not in response.content.decode()


def test_participants_and_outsiders_get_no_settings_page(client, room, member, outsider):
    client.force_login(member.user)
    assert client.get(settings_url(room)).status_code == 404
    assert settings_post(client, room, name="Mine").status_code == 404
    client.force_login(outsider)
    assert client.get(settings_url(room)).status_code == 404
    assert client.get(reverse("room_settings", args=["no-such-room"])).status_code == 404
    client.logout()
    response = client.get(settings_url(room))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    room.refresh_from_db()
    assert room.name == "Standup"


def test_the_owner_renames_turns_guests_off_locks_and_opens_the_lobby(client, owner, room):
    client.force_login(owner)
    response = settings_post(
        client, room, name="Daily", guest_access="", locked="on", lobby_enabled="on"
    )
    assert response.status_code == 302 and response["Location"] == settings_url(room)
    room.refresh_from_db()
    assert (room.name, room.guest_access, room.locked, room.lobby_enabled) == (
        "Daily",
        False,
        True,
        True,
    )
    actions = set(AuditLog.objects.filter(room=room).values_list("action", flat=True))
    assert {AuditLog.Action.LOCK, AuditLog.Action.LOBBY_ON} <= actions
    # Saving again unchanged writes no second audit row.
    settings_post(client, room, name="Daily", guest_access="", locked="on", lobby_enabled="on")
    assert AuditLog.objects.filter(room=room, action=AuditLog.Action.LOCK).count() == 1


def test_the_room_password_is_set_and_removed_from_the_settings_page(client, owner, room):
    client.force_login(owner)
    settings_post(client, room, password="open sesame")
    room.refresh_from_db()
    assert room.password_hash and "open sesame" not in room.password_hash
    assert "open sesame" not in client.get(settings_url(room)).content.decode()
    settings_post(client, room, clear_password="on")
    room.refresh_from_db()
    assert room.password_hash == ""


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "x" * 81}, "name"),
        ({"name": "two\nlines"}, "name"),
        ({"name": "bidi \u202e"}, "name"),
        ({"password": "abc"}, "password"),
        ({"password": "p" * 129}, "password"),
        ({"password": "long enough", "clear_password": "on"}, "__all__"),
    ],
)
def test_bad_settings_are_form_errors(client, owner, room, changes, field):
    client.force_login(owner)
    response = settings_post(client, room, **changes)
    assert response.status_code == 200
    assert field in response.context["form"].errors
    room.refresh_from_db()
    assert room.name == "Standup" and room.password_hash == ""


def test_settings_junk_is_never_a_500(client, owner, room):
    client.force_login(owner)
    body = "name=%00&guest_access=%ED%A0%80&locked=a&locked=b&password=%00%00%00%00%00"
    response = client.post(
        settings_url(room), body, content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 200
    assert response.context["form"].errors
    room.refresh_from_db()
    assert room.name == "Standup"


def test_the_members_list_shows_who_is_banned_or_removed(client, owner, room, member, invite):
    from rooms import keys

    guest = services.membership_join_as_guest(invite=invite, display_name="Gus", address="10.0.0.9")
    gone = make_user(User, "gwen")
    services.membership_join(invite=invite, user=gone)
    until = timezone.now() + timezone.timedelta(days=2)
    Ban.objects.create(
        room=room, user=member.user, display_name="marco", reason="spam", until=until
    )
    Ban.objects.create(room=room, user=gone, display_name="gwen", banned_by=owner)
    Membership.objects.filter(user=gone).delete()  # removed in the admin, still banned
    keys.sync_client().set(keys.kicked_key(room.pk, guest.pk), "1", ex=300)
    client.force_login(owner)
    response = client.get(settings_url(room))
    rows = {m["display_name"]: m for m in response.context["members"]}
    assert rows["marco"]["banned"] and rows["marco"]["banned_until"] == until
    assert rows["marco"]["ban_reason"] == "spam"
    assert rows["Gus"]["kicked_until"] is not None and not rows["Gus"]["banned"]
    assert rows["Gus"]["is_guest"]
    assert rows["gwen"]["id"] is None and rows["gwen"]["banned"] and rows["gwen"]["role"] is None
    assert rows["gwen"]["banned_until"] is None
    page = response.content.decode()
    assert "Banned until lifted" in page and "Removed: may come back after" in page
    assert "no longer a member" in page


def test_rotating_the_invite_returns_to_the_settings_page(client, owner, room):
    client.force_login(owner)
    old = room.invites.first().token
    response = client.post(reverse("invite_rotate", args=[room.slug]))
    assert response["Location"] == settings_url(room)
    page = client.get(response["Location"]).content.decode()
    assert old not in page and room.invites.filter(revoked_at__isnull=True).get().token in page
