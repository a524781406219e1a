"""Server pages with the plain Django client: the landing page, invites through every way in,
``/join/``, the room form, and the room settings page. Bad input is a form error, never a 500."""

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from rooms import services
from rooms.models import Ban, Membership, Role, Room
from tests.conftest import PASSWORD

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
