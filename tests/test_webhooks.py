"""Webhooks for room owners: SSRF refusal as a form error, owner-only pages,
signatures receivers can verify, and which webhooks an event reaches."""

import time

import pytest

from deliveries import breaker, services, signing
from deliveries.models import Webhook
from deliveries.urlsafety import UnsafeURL, url_check

pytestmark = pytest.mark.django_db


def login(client, user):
    client.force_login(user)
    return client


@pytest.mark.parametrize(
    "url",
    [
        "ftp://93.184.215.14/hook",
        "javascript:alert(1)",
        "http:///nohost",
        "http://127.0.0.1:8000/hook",
        "http://localhost/hook",
        "http://10.1.2.3/hook",
        "http://192.168.0.10/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://100.64.0.1/hook",
        "http://0.0.0.0/hook",
        # IPv6 wrappers of private IPv4 destinations: NAT64, 6to4, IPv4-compatible,
        # IPv4-mapped, local-use NAT64.
        "http://[64:ff9b::7f00:1]/hook",
        "http://[64:ff9b::a9fe:a9fe]/latest/meta-data/",
        "http://[2002:7f00:1::]/hook",
        "http://[2002:c0a8:1::1]/hook",
        "http://[::7f00:1]/hook",
        "http://[::a00:1]/hook",
        "http://[::ffff:169.254.169.254]/hook",
        "http://[64:ff9b:1::a00:1]/hook",
    ],
)
def test_unsafe_webhook_url_is_refused_with_a_form_error(client, owner, room, settings, url):
    settings.WEBHOOK_ALLOW_PRIVATE = False
    login(client, owner)
    response = client.post(f"/r/{room.slug}/webhooks/", {"url": url, "events": ["message.posted"]})
    assert response.status_code == 200
    assert response.context["form"].errors["url"]
    assert not Webhook.objects.exists()


def test_public_address_is_accepted_and_private_only_when_allowed(settings):
    settings.WEBHOOK_ALLOW_PRIVATE = False
    url_check(url="https://93.184.215.14/hook", allow_private=False)
    with pytest.raises(UnsafeURL):
        url_check(url="http://127.0.0.1/hook", allow_private=False)
    url_check(url="http://127.0.0.1/hook", allow_private=True)
    with pytest.raises(UnsafeURL):
        url_check(url="file:///etc/passwd", allow_private=True)


@pytest.mark.parametrize(
    "url",
    ["http://[64:ff9b::5db8:d70e]/hook", "http://[2002:5db8:d70e::1]/hook"],
)
def test_ipv6_wrapping_a_public_ipv4_is_judged_by_that_ipv4(url):
    url_check(url=url, allow_private=False)  # 93.184.215.14 inside


class _Resolver:
    """getaddrinfo where one name answers public first, loopback afterwards
    (DNS rebinding); every other host resolves as usual."""

    def __init__(self, real, name: str, answers: list[str]) -> None:
        self.real, self.name, self.answers, self.asked = real, name, answers, 0

    def __call__(self, host, port, *args, **kwargs):
        if host != self.name:
            return self.real(host, port, *args, **kwargs)
        address = self.answers[min(self.asked, len(self.answers) - 1)]
        self.asked += 1
        return self.real(address, port, *args, **kwargs)


def _send(hook, delivery_id="rb1"):
    from deliveries.senders import SENDERS

    return SENDERS["webhook"].send(
        delivery_id=delivery_id,
        target=hook.url,
        payload={
            "webhook_id": hook.pk,
            "room_id": hook.room_id,
            "event": "message.posted",
            "data": {},
            "created_at": "2026-11-28T00:00:00+00:00",
        },
    )


def test_the_sender_connects_to_the_address_it_checked_not_a_second_lookup(
    room, receiver, settings, monkeypatch
):
    import socket

    from deliveries.senders import SendError

    settings.WEBHOOK_ALLOW_PRIVATE = False
    settings.DELIVERY_HTTP_TIMEOUT_S = 0.5
    rec = receiver()  # on 127.0.0.1: where a rebinding answer would send us
    resolver = _Resolver(socket.getaddrinfo, "rebind.example", ["93.184.215.14", "127.0.0.1"])
    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    hook = Webhook.objects.create(
        room=room, url=f"http://rebind.example:{rec.port}/hook", events=["message.posted"]
    )
    with pytest.raises(SendError) as caught:
        _send(hook)  # the checked public address does not answer here
    assert caught.value.retryable
    assert resolver.asked == 1
    assert rec.hits == []


def test_https_goes_to_the_checked_address_with_the_name_for_tls(
    room, settings, monkeypatch, tmp_path
):
    import socket
    import ssl
    import subprocess
    import threading

    from deliveries.senders import SendError

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
        + ["-subj", "/CN=hooks.example", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    server_names: list[str | None] = []
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    context.sni_callback = lambda sock, name, ctx: server_names.append(name)
    listener = socket.create_server(("127.0.0.2", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        conn, _ = listener.accept()
        try:
            context.wrap_socket(conn, server_side=True)
        except (ssl.SSLError, OSError):
            pass  # the client refuses our self-signed certificate: expected
        finally:
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    settings.WEBHOOK_ALLOW_PRIVATE = True  # 127.0.0.2 stands for the checked address
    resolver = _Resolver(socket.getaddrinfo, "hooks.example", ["127.0.0.2", "127.0.0.1"])
    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    hook = Webhook.objects.create(
        room=room, url=f"https://hooks.example:{port}/hook", events=["message.posted"]
    )
    try:
        with pytest.raises(SendError) as caught:
            _send(hook, "tls1")
    finally:
        listener.close()
    assert "CERTIFICATE_VERIFY_FAILED" in caught.value.message  # TLS checks the name...
    assert server_names == ["hooks.example"]  # ...sent as SNI, to the checked address
    assert resolver.asked == 1


def test_owner_registers_a_webhook_and_sees_its_secret(client, owner, room, settings):
    settings.WEBHOOK_ALLOW_PRIVATE = False
    login(client, owner)
    page = client.get(f"/r/{room.slug}/")
    assert f"/r/{room.slug}/webhooks/" in page.content.decode()
    response = client.post(
        f"/r/{room.slug}/webhooks/",
        {"url": "https://93.184.215.14/hook", "events": ["message.posted", "call.started"]},
    )
    assert response.status_code == 302
    hook = Webhook.objects.get()
    assert hook.events == ["call.started", "message.posted"]
    assert hook.room == room and hook.active and len(hook.secret) == 64
    listing = client.get(f"/r/{room.slug}/webhooks/").content.decode()
    assert hook.secret in listing
    settings.BREAKER_FAIL_MAX = 1
    breaker.breaker_record_failure(target="http:93.184.215.14:443")
    assert "receiver failing" in client.get(f"/r/{room.slug}/webhooks/").content.decode()
    client.post(f"/r/{room.slug}/webhooks/{hook.pk}/", {"action": "pause"})
    hook.refresh_from_db()
    assert not hook.active
    client.post(f"/r/{room.slug}/webhooks/{hook.pk}/", {"action": "delete"})
    assert not Webhook.objects.exists()


def test_members_and_outsiders_cannot_see_or_add_webhooks(
    client, member, member_user, outsider, room
):
    Webhook.objects.create(room=room, url="https://93.184.215.14/h", events=["call.ended"])
    for user in (member_user, outsider):
        login(client, user)
        assert client.get(f"/r/{room.slug}/webhooks/").status_code == 404
        response = client.post(
            f"/r/{room.slug}/webhooks/",
            {"url": "https://93.184.215.14/x", "events": ["call.ended"]},
        )
        assert response.status_code == 404
        assert "/webhooks/" not in client.get(f"/r/{room.slug}/").content.decode()
    assert Webhook.objects.count() == 1


def test_signature_verifies_only_the_exact_fresh_body():
    body = b'{"event":"message.posted"}'
    ts = int(time.time())
    sig = signing.signature_compute(secret="s3cret", timestamp=ts, body=body)
    assert signing.signature_verify(secret="s3cret", timestamp=str(ts), body=body, signature=sig)
    assert not signing.signature_verify(secret="other", timestamp=str(ts), body=body, signature=sig)
    assert not signing.signature_verify(
        secret="s3cret", timestamp=str(ts), body=body + b" ", signature=sig
    )
    assert not signing.signature_verify(
        secret="s3cret", timestamp=str(ts), body=body, signature=sig, now=ts + 3600
    )


def test_room_event_emit_counts_only_active_subscribed_webhooks(
    room, monkeypatch, django_capture_on_commit_callbacks
):
    sent = []
    monkeypatch.setattr(services, "_enqueue", lambda **kw: sent.append(kw))
    Webhook.objects.create(room=room, url="https://93.184.215.14/a", events=["message.posted"])
    Webhook.objects.create(room=room, url="https://93.184.215.14/b", events=["call.started"])
    Webhook.objects.create(
        room=room, url="https://93.184.215.14/c", events=["message.posted"], active=False
    )
    with pytest.raises(ValueError):
        services.room_event_emit(room_id=room.pk, event="nope", data={})
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        n = services.room_event_emit(room_id=room.pk, event="message.posted", data={"seq": 1})
    assert n == 1
    assert sent == []  # nothing leaves before the commit
    for callback in callbacks:
        callback()
    assert [s["target"] for s in sent] == ["https://93.184.215.14/a"]
    assert sent[0]["payload"]["data"] == {"seq": 1}


@pytest.mark.parametrize(
    "url",
    [
        "https://93.184.215.14/ho\x00ok",
        "https://93.184.215.14/ho\x07ok",
        "https://93.184.215.14/\u202ekooh",
        "https://93.184.215.14/hook\r\nX-Injected: 1",
    ],
)
def test_webhook_url_text_that_cannot_be_stored_is_a_form_error(client, owner, room, url):
    login(client, owner)
    response = client.post(f"/r/{room.slug}/webhooks/", {"url": url, "events": ["message.posted"]})
    assert response.status_code == 200
    assert response.context["form"].errors["url"]
    assert not Webhook.objects.exists()


def test_webhook_create_refuses_text_that_cannot_be_stored(room):
    from videochat.errors import BadRequest

    with pytest.raises(BadRequest) as refused:
        services.webhook_create(
            room=room,
            url="https://93.184.215.14/ho\x00ok",
            events=["message.posted"],
            allow_private=False,
        )
    assert refused.value.data.get("field") == "url"
    assert not Webhook.objects.exists()
