"""Smaller hardening, each with its test: the socket Origin's scheme and port, password
spraying, per-address limits on sign-ups and guests, per-user caps, guest names that pose
as someone else, and Permissions-Policy."""

import pytest
from django.urls import reverse

from rooms import services
from rooms.models import Membership, Role, Room
from tests.conftest import PASSWORD
from tests.fixtures.sockets import communicator, session_cookie_for
from videochat.errors import Conflict, Forbidden
from videochat.origin import origin_allowed
from videochat.redisconfig import RedisConfig

# --- WebSocket Origin: scheme and port, not only the host ----------------------------


def scope(origin, host="chat.example.com", scheme="ws", **headers):
    raw = [(b"host", host.encode())]
    if origin is not None:
        raw.append((b"origin", origin.encode()))
    raw += [(k.replace("_", "-").encode(), v.encode()) for k, v in headers.items()]
    return {"type": "websocket", "scheme": scheme, "headers": raw}


@pytest.fixture
def hosts(settings):
    settings.ALLOWED_HOSTS = ["chat.example.com", "localhost"]
    settings.CSRF_TRUSTED_ORIGINS = []


@pytest.mark.parametrize(
    ("origin", "host", "scheme", "allowed"),
    [
        ("https://chat.example.com", "chat.example.com", "wss", True),
        ("https://chat.example.com:443", "chat.example.com", "wss", True),
        ("http://chat.example.com", "chat.example.com", "wss", False),  # scheme
        ("https://chat.example.com:8443", "chat.example.com", "wss", False),  # port
        ("https://evil.example", "chat.example.com", "wss", False),  # host
        ("http://localhost:8000", "localhost:8000", "ws", True),  # development
        ("http://localhost:9000", "localhost:8000", "ws", False),  # another local service
        ("https://localhost:8000", "localhost:8000", "ws", False),
        ("http://evil.example:8000", "evil.example:8000", "ws", False),  # not an allowed host
        ("null", "localhost:8000", "ws", False),
        (None, "localhost:8000", "ws", False),
        ("http://localhost:99999999", "localhost:8000", "ws", False),
    ],
)
def test_origin_must_match_scheme_host_and_port(hosts, origin, host, scheme, allowed):
    assert origin_allowed(scope(origin, host=host, scheme=scheme)) is allowed


def test_behind_a_tls_proxy_the_forwarded_scheme_counts(hosts, settings):
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    proxied = {"x_forwarded_proto": "https"}
    assert origin_allowed(scope("https://chat.example.com", **proxied))
    assert not origin_allowed(scope("http://chat.example.com", **proxied))
    # Without the proxy setting the header is not trusted.
    del settings.SECURE_PROXY_SSL_HEADER
    assert not origin_allowed(scope("https://chat.example.com", **proxied))


def test_csrf_trusted_origins_may_connect_exactly(hosts, settings):
    settings.CSRF_TRUSTED_ORIGINS = ["https://app.example.com"]
    assert origin_allowed(scope("https://app.example.com", host="chat.example.com"))
    assert not origin_allowed(scope("https://app.example.com:444", host="chat.example.com"))


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("origin", "connected"),
    [("http://localhost", True), ("http://localhost:8000", False), ("https://localhost", False)],
)
async def test_the_socket_is_refused_at_the_handshake_for_another_port_or_scheme(
    member, origin, connected
):
    comm = await communicator(
        slug="standup", cookie=await session_cookie_for(member.user), origin=origin
    )
    ok, _ = await comm.connect()
    await comm.disconnect()
    assert ok is connected


# --- logins, sign-ups and guests per address -------------------------------------------


@pytest.mark.django_db
def test_password_spraying_across_usernames_from_one_address_is_locked_out(client, owner, settings):
    assert settings.LOGIN_FAILURE_LIMIT < settings.LOGIN_FAILURE_LIMIT_PER_ADDRESS
    # One guess at each of many usernames: never the per-account limit.
    for i in range(settings.LOGIN_FAILURE_LIMIT_PER_ADDRESS - 1):
        response = client.post(
            "/accounts/login/", {"username": f"user{i}", "password": "Summer2026!"}
        )
        assert response.status_code == 200, i
    # A person behind the same address is not locked out by a few typos of others...
    ok = client.post("/accounts/login/", {"username": "olivia", "password": PASSWORD})
    assert ok.status_code == 302
    client.logout()
    client.post("/accounts/login/", {"username": "user-last", "password": "Summer2026!"})
    # ...but once the address has sprayed its limit, every login from it waits.
    locked = client.post("/accounts/login/", {"username": "olivia", "password": PASSWORD})
    assert locked.status_code == 429
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db
def test_sign_ups_are_limited_per_address(client, settings):
    settings.SIGNUPS_PER_ADDRESS_PER_HOUR = 2
    from django.contrib.auth.models import User

    for name in ("ann", "ben"):
        client.post(
            reverse("signup"),
            {"username": name, "password1": PASSWORD, "password2": PASSWORD},
        )
        client.logout()
    response = client.post(
        reverse("signup"), {"username": "cat", "password1": PASSWORD, "password2": PASSWORD}
    )
    assert response.status_code == 429 and int(response["Retry-After"]) > 0
    assert response.context["form"].non_field_errors()
    assert sorted(User.objects.values_list("username", flat=True)) == ["ann", "ben"]


@pytest.mark.django_db
def test_guests_are_limited_per_address(client, room, invite, settings):
    settings.GUESTS_PER_ADDRESS_PER_HOUR = 2
    url = reverse("invite", args=[invite.token])
    from django.test import Client

    for name in ("Gina", "Hal"):
        assert Client().post(url, {"display_name": name}).status_code == 302
    response = client.post(url, {"display_name": "Ivy"})
    assert response.status_code == 429
    assert "display_name" in response.context["form"].errors
    assert Membership.objects.filter(role=Role.GUEST).count() == 2


# --- per-user caps -------------------------------------------------------------------


@pytest.mark.django_db
def test_rooms_per_user_are_capped(client, owner, room, settings):
    settings.ROOMS_PER_USER_MAX = 2
    services.room_create(owner=owner, name="Two", slug="two", capacity=4, guest_access=False)
    with pytest.raises(Conflict):
        services.room_create(
            owner=owner, name="Three", slug="three", capacity=4, guest_access=False
        )
    client.force_login(owner)
    response = client.post(
        reverse("room_create"), {"name": "Three", "slug": "three", "capacity": 4}
    )
    assert response.status_code == 200 and response.context["form"].non_field_errors()
    assert Room.objects.filter(owner=owner).count() == 2


@pytest.mark.django_db
def test_guests_per_invite_are_capped_and_a_new_link_admits_again(room, owner, invite, settings):
    settings.GUESTS_PER_INVITE_MAX = 2
    for name in ("Gina", "Hal"):
        services.membership_join_as_guest(invite=invite, display_name=name)
    with pytest.raises(Forbidden):
        services.membership_join_as_guest(invite=invite, display_name="Ivy")
    services.invite_revoke(invite=invite)
    fresh = services.invite_create(room=room, created_by=owner)
    assert services.membership_join_as_guest(invite=fresh, display_name="Ivy").role == Role.GUEST


# --- names ---------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["olivia", "OLIVIA", "marco", "oscar"])
def test_a_guest_cannot_take_a_members_or_an_accounts_name(room, member, outsider, invite, name):
    with pytest.raises(Conflict):
        services.membership_join_as_guest(invite=invite, display_name=name)
    assert not Membership.objects.filter(role=Role.GUEST).exists()


@pytest.mark.django_db
def test_a_taken_guest_name_is_a_form_error_on_the_page(client, room, invite):
    response = client.post(reverse("invite", args=[invite.token]), {"display_name": "Olivia"})
    assert response.status_code == 200
    assert "display_name" in response.context["form"].errors


@pytest.mark.django_db
def test_two_guests_cannot_share_a_name(room, invite):
    services.membership_join_as_guest(invite=invite, display_name="Gina")
    with pytest.raises(Conflict):
        services.membership_join_as_guest(invite=invite, display_name="gina")


# --- Permissions-Policy ----------------------------------------------------------------


@pytest.mark.django_db
def test_pages_limit_camera_microphone_and_screen_capture_to_our_origin(client, owner, room):
    client.force_login(owner)
    for path in ("/", f"/r/{room.slug}/", "/accounts/login/", "/healthz"):
        policy = client.get(path)["Permissions-Policy"]
        assert "camera=(self)" in policy, path
        assert "microphone=(self)" in policy and "display-capture=(self)" in policy
        assert "geolocation=()" in policy


@pytest.mark.django_db
def test_with_redis_down_sign_up_still_works_instead_of_a_500(client, settings):
    settings.REDIS = RedisConfig(url="redis://127.0.0.1:1/0")
    response = client.post(
        reverse("signup"), {"username": "ann", "password1": PASSWORD, "password2": PASSWORD}
    )
    assert response.status_code == 302
