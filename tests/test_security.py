"""The room socket against bad input and abuse: each refusal has its documented code.

Real ASGI router (Origin validator, auth middleware), real Redis (rate limits),
real database; a hypothesis fuzz over every registered frame type.
"""

import json
import re
from pathlib import Path

import pytest
from asgiref.sync import sync_to_async
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rooms import keys, security, services
from rooms.models import Membership, Role
from rooms.protocol import HANDLERS, PROTOCOL_VERSION
from tests.conftest import make_user
from tests.fixtures.sockets import communicator, joined, receive_until, session_cookie_for
from videochat import ratelimit

pytestmark = pytest.mark.django_db(transaction=True)

DOCS = Path(__file__).resolve().parent.parent / "docs" / "protocol.md"


def documented(section: str) -> set[str]:
    """First-column codes of a table in a section of docs/protocol.md."""
    text = DOCS.read_text()
    body = text.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `?([a-z_0-9]+)`? \|", body, flags=re.M))


ERROR_CODES = documented("Errors")
CLOSE_CODES = {int(c) for c in documented("Close codes") if c.isdigit()}


async def refused_at_connect(**kwargs) -> tuple[bool, int | None]:
    comm = await communicator(slug=kwargs.pop("slug", "standup"), **kwargs)
    connected, code = await comm.connect()
    if connected:
        out = await comm.receive_output(timeout=5)
        await comm.disconnect()
        return True, out.get("code")
    return False, code


# --- connecting ------------------------------------------------------------------------


async def test_foreign_origin_is_refused_at_the_handshake(member):
    cookie = await session_cookie_for(member.user)
    connected, _ = await refused_at_connect(cookie=cookie, origin="https://evil.example")
    assert connected is False


async def test_no_origin_and_no_auth_and_non_member_are_refused_with_documented_codes(
    room, outsider
):
    assert (await refused_at_connect(origin=None))[0] is False
    # Accepted, then closed with 4401 / 4403 / 4404, so the client can read
    # the code (tests/test_socket_refusals_live.py proves it on daphne).
    assert await refused_at_connect() == (True, 4401)
    cookie = await session_cookie_for(outsider)
    assert await refused_at_connect(cookie=cookie) == (True, 4403)
    assert await refused_at_connect(cookie=cookie, slug="nowhere") == (True, 4404)
    assert {4401, 4403, 4404} <= CLOSE_CODES


# --- frames -------------------------------------------------------------------------------


async def test_malformed_frames_get_documented_errors_and_the_socket_stays(member):
    async with joined(member.user) as (comm, _):
        cases = [
            ("not json", "bad_json"),
            ("[1, 2]", "bad_json"),
            ('"text"', "bad_json"),
            ("{}", "bad_request"),
            ('{"type": 7}', "bad_request"),
            ('{"type": "nope.nothing"}', "unknown_type"),
            ('{"type": "mod.kick", "member_id": "1"}', "bad_request"),
            ('{"type": "presence.update", "audio": "yes"}', "bad_request"),
        ]
        for text, code in cases:
            await comm.send_to(text_data=text)
            error = await receive_until(comm, "error")
            assert error["code"] == code, (text, error)
            assert code in ERROR_CODES
        await comm.send_to(bytes_data=b"\x00\x01")
        assert (await receive_until(comm, "error"))["code"] == "bad_json"
        await comm.send_json_to({"type": "ping", "t": 1})
        assert (await receive_until(comm, "pong"))["present"] is True


async def test_oversize_frames_are_refused_per_type_and_overall(member):
    async with joined(member.user) as (comm, _):
        await comm.send_json_to({"type": "ping", "t": "x" * 400, "ref": "big"})
        error = await receive_until(comm, "error")
        assert error == {
            "type": "error",
            "code": "too_large",
            "message": error["message"],
            "limit": security.frame_limit("ping"),
            "ref": "big",
        }
        await comm.send_json_to({"type": "mod.kick", "member_id": 1, "reason": "x" * 3000})
        assert (await receive_until(comm, "error"))["limit"] == security.frame_limit("mod.kick")
        await comm.send_json_to({"type": "signal.offer", "sdp": "x" * 70000})
        assert (await receive_until(comm, "error"))["code"] == "too_large"
        await comm.send_json_to({"type": "ping", "t": 2})
        assert (await receive_until(comm, "pong"))["t"] == 2


async def test_a_flood_is_answered_with_rate_limited_and_retry_after(member):
    async with joined(member.user) as (comm, _):
        for i in range(260):
            await comm.send_json_to({"type": "ping", "t": i})
        error = await receive_until(comm, "error", limit=600)
        assert error["code"] == "rate_limited" and error["retry_after"] > 0
        assert "rate_limited" in ERROR_CODES


async def test_many_accounts_from_one_address_share_a_per_address_limit(
    room, member, django_user_model, monkeypatch
):
    monkeypatch.setattr(security, "IP_FRAME_LIMIT", ratelimit.Limit("t-ip", rate=1, burst=12))
    other = await sync_to_async(make_user)(django_user_model, "nina")
    await sync_to_async(services.membership_join)(invite=await room.invites.afirst(), user=other)
    socks = []
    for user in (member.user, other):
        comm = await communicator(slug="standup", cookie=await session_cookie_for(user))
        comm.scope["client"] = ("203.0.113.9", 5000)  # one NAT, two people
        assert (await comm.connect())[0]
        await comm.send_json_to({"type": "hello", "v": PROTOCOL_VERSION})
        await receive_until(comm, "welcome")
        socks.append(comm)
    try:
        # 2 hellos + 10 pings fit the per-address burst; the next is refused,
        # far below the per-user limit of either account.
        for i in range(5):
            for comm in socks:
                await comm.send_json_to({"type": "ping", "t": i})
                await receive_until(comm, "pong")
        await socks[1].send_json_to({"type": "ping", "t": 99})
        error = await receive_until(socks[1], "error")
        assert error["code"] == "rate_limited" and error["retry_after"] > 0
    finally:
        for comm in socks:
            await comm.disconnect()


async def test_a_demoted_moderator_loses_powers_even_if_the_notice_is_lost(owner, member, room):
    """Demoted by another instance whose channel-layer event never arrived."""
    await Membership.objects.filter(pk=member.pk).aupdate(role=Role.MODERATOR)
    async with joined(member.user) as (comm, welcome):
        assert welcome["member"]["role"] == "moderator"
        # Only the database and the shared revision change: no event to this socket.
        await Membership.objects.filter(pk=member.pk).aupdate(role=Role.PARTICIPANT)
        from videochat.redis import get_redis

        await get_redis().incr(keys.modrev_key(room.pk))
        await comm.send_json_to({"type": "mod.lock", "locked": True, "ref": "x"})
        assert (await receive_until(comm, "member.you"))["role"] == "participant"
        error = await receive_until(comm, "error")
        assert (error["code"], error["ref"]) == ("forbidden", "x")


async def test_a_ban_whose_close_event_was_lost_closes_on_the_next_frame(owner, member, room):
    owner_member = await Membership.objects.aget(room=room, user=owner)
    async with joined(member.user) as (comm, _):
        # Write the ban without its live enforcement (as if the event were dropped).
        from rooms.models import Ban
        from videochat.redis import get_redis

        await Ban.objects.acreate(
            room=room, user=member.user, display_name="marco", banned_by_id=owner_member.user_id
        )
        await get_redis().incr(keys.modrev_key(room.pk))
        await comm.send_json_to({"type": "ping", "t": 1})
        assert (await receive_until(comm, "mod.banned"))["type"] == "mod.banned"
        closed = await comm.receive_output(timeout=5)
        assert closed == {"type": "websocket.close", "code": 4003, "reason": None} or (
            closed["type"] == "websocket.close" and closed["code"] == 4003
        )


# --- fuzz -------------------------------------------------------------------------------------

FIELDS = [
    "member_id", "knock_id", "seq", "body", "client_id", "reason", "locked", "enabled",
    "password", "role", "request", "minutes", "peer_id", "to", "sdp", "candidate",
    "after_seq", "before_seq", "limit", "audio", "video", "screen", "t", "v", "ref", "resume",
    "in_call", "description",
]  # fmt: skip
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=24),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)
# "leave" closes the socket on purpose (documented); everything else must not.
frame_types = st.sampled_from(sorted(set(HANDLERS) - {"leave"}) + ["hello"]) | st.text(max_size=16)
frames = st.fixed_dictionaries(
    {"type": frame_types}, optional={name: json_values for name in FIELDS}
)


@settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(batch=st.lists(frames, min_size=1, max_size=8), as_owner=st.booleans())
async def test_fuzzed_frames_of_every_type_get_documented_answers_and_no_crash(
    batch, as_owner, owner, member, room
):
    # Owner and member both exercise handlers (mod.* pass authorization for the owner).
    user = owner if as_owner else member.user
    async with joined(user) as (comm, _):
        for frame in batch:
            try:
                await comm.send_to(text_data=json.dumps(frame))
            except AssertionError:
                pass
        marker = f"end-{id(batch)}"
        await comm.send_json_to({"type": "ping", "t": marker})
        for _ in range(200):
            out = await comm.receive_output(timeout=5)
            assert out["type"] == "websocket.send", f"socket closed by {batch!r}: {out}"
            reply = json.loads(out["text"])
            if reply["type"] == "error":
                assert reply["code"] in ERROR_CODES, (reply, batch)
            if reply["type"] == "pong" and reply.get("t") == marker:
                break
        else:
            raise AssertionError("no pong after the fuzzed batch")


# --- pages ----------------------------------------------------------------------------


def test_pages_carry_a_strict_csp_without_inline_script(client, owner, room):
    owner.is_staff = owner.is_superuser = True
    owner.save()
    client.force_login(owner)
    for path in ("/", f"/r/{room.slug}/", "/rooms/new/", "/admin/"):
        response = client.get(path)
        assert response.status_code == 200, path
        csp = response["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert "frame-ancestors 'none'" in csp
        html = response.content.decode()
        # Every script is an external module; no inline handlers or style attributes.
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), path
        assert not re.search(r"\son[a-z]+=", html), path
        assert not re.search(r"\sstyle=", html), path


def test_login_brute_force_is_locked_out(client, owner, settings):
    for _ in range(settings.LOGIN_FAILURE_LIMIT):
        client.post("/accounts/login/", {"username": "olivia", "password": "wrong-guess"})
    response = client.post("/accounts/login/", {"username": "olivia", "password": "wrong-guess"})
    assert response.status_code == 429
    # Even the right password is refused while locked out.
    from tests.conftest import PASSWORD

    response = client.post("/accounts/login/", {"username": "olivia", "password": PASSWORD})
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session


def test_forms_need_csrf(owner, room):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(owner)
    assert strict.post(f"/r/{room.slug}/invite/rotate/").status_code == 403


def test_revoked_and_expired_invites_are_refused_and_admin_can_revoke(
    client, django_user_model, room, invite
):
    from datetime import timedelta

    from django.utils import timezone

    from rooms.models import AuditLog, Invite

    admin_user = django_user_model.objects.create_superuser("root", "r@example.com", "x-pass-9!")
    client.force_login(admin_user)
    response = client.post(
        "/admin/rooms/invite/",
        {"action": "revoke_invites", "_selected_action": [invite.pk]},
    )
    assert response.status_code == 302
    invite.refresh_from_db()
    assert invite.revoked_at is not None
    assert AuditLog.objects.get(room=room).action == "invite_revoke"
    client.logout()
    assert client.get(f"/i/{invite.token}/").status_code == 404
    old = Invite.objects.create(room=room, expires_at=timezone.now() - timedelta(seconds=1))
    assert client.get(f"/i/{old.token}/").status_code == 404
    assert len(old.token) >= 32  # 192 random bits, URL-safe


async def test_a_connection_flood_from_one_address_is_refused_with_retry_after(member, monkeypatch):
    monkeypatch.setattr(security, "IP_CONNECT_LIMIT", ratelimit.Limit("t-conn", rate=1, burst=3))
    cookie = await session_cookie_for(member.user)
    for _ in range(3):
        comm = await communicator(slug="standup", cookie=cookie)
        assert (await comm.connect())[0]
        await comm.disconnect()
    comm = await communicator(slug="standup", cookie=cookie)
    assert (await comm.connect())[0]
    error = await comm.receive_json_from(timeout=5)
    assert error["code"] == "rate_limited" and error["retry_after"] > 0
    closed = await comm.receive_output(timeout=5)
    assert (closed["type"], closed["code"]) == ("websocket.close", 4429)
    assert 4429 in CLOSE_CODES
    await comm.disconnect()


async def test_a_removed_membership_is_closed_on_the_next_frame(owner, member, room):
    from videochat.redis import get_redis

    async with joined(member.user) as (comm, _):
        await Membership.objects.filter(pk=member.pk).adelete()
        await get_redis().incr(keys.modrev_key(room.pk))
        await comm.send_json_to({"type": "ping", "t": 1})
        error = await receive_until(comm, "error")
        assert error["code"] == "forbidden"
        closed = await comm.receive_output(timeout=5)
        assert (closed["type"], closed["code"]) == ("websocket.close", 4403)


@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(batch=st.lists(frames, min_size=1, max_size=6))
async def test_fuzzed_frames_before_hello_are_refused_or_close_with_documented_codes(
    batch, member, room
):
    """Before the handshake, anything but a good hello is refused; a bad hello closes."""
    comm = await communicator(slug="standup", cookie=await session_cookie_for(member.user))
    assert (await comm.connect())[0]
    try:
        for frame in batch:
            await comm.send_to(text_data=json.dumps(frame))
        marker = f"pre-{id(batch)}"
        # Answered with pong if some hello got in, else with not_ready echoing the ref.
        await comm.send_json_to({"type": "ping", "t": marker, "ref": marker})
        for _ in range(200):
            out = await comm.receive_output(timeout=5)
            if out["type"] == "websocket.close":
                assert out["code"] in CLOSE_CODES, (out, batch)
                return
            reply = json.loads(out["text"])
            if reply["type"] == "error":
                assert reply["code"] in ERROR_CODES, (reply, batch)
                if reply.get("ref") == marker:
                    assert reply["code"] == "not_ready"
                    return
            if reply["type"] == "pong" and reply.get("t") == marker:
                return
        raise AssertionError("no answer to the closing ping")
    finally:
        await comm.disconnect()
