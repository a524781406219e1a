"""Run many chat clients while faults are injected, then let them settle."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from messaging.models import Message
from rooms import services as room_services
from videochat.devstack import scaled

from .check import check_logs
from .client import ChatClient, room_heads, stop_clients


async def run_clients(
    clients: list[ChatClient],
    faults: Callable[[], Awaitable[None]],
    *,
    settle_s: float = 30,
) -> float:
    """Start the clients, run ``faults`` (returns when the faults are over),
    then wait until every message is acknowledged and every client holds the
    head of its room. Returns the seconds taken."""
    started = time.monotonic()
    tasks = [asyncio.create_task(c.run()) for c in clients]
    try:
        await faults()
        deadline = time.monotonic() + settle_s
        while not all(c.all_acked for c in clients):
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)
        heads = room_heads(clients)
        while any(c.last_seq < heads.get(c.room, 0) for c in clients):
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)
    finally:
        await stop_clients(clients, tasks)
    return time.monotonic() - started


async def wait_all_welcomed(
    clients: list[ChatClient], since: float, *, timeout_s: float = 20
) -> None:
    """Until every client holds a welcomed socket opened at or after ``since``
    (monotonic). With ``since`` taken after a server's death, such a socket is
    one its successor accepted, however early the client got in (before the
    harness saw the successor's /healthz answer, for one). AssertionError,
    naming the clients still out, after ``timeout_s`` (scaled by
    TEST_TIMEOUT_FACTOR)."""
    deadline = time.monotonic() + scaled(timeout_s)

    def out() -> list[str]:
        return [
            c.name
            for c in clients
            if c._ws is None or c.held_opened_at is None or c.held_opened_at < since
        ]

    while missing := out():
        if time.monotonic() > deadline:
            held = {
                c.name: None if c.held_opened_at is None else round(c.held_opened_at - since, 2)
                for c in clients
                if c.name in missing
            }
            raise AssertionError(
                f"not connected after {timeout_s}s: {missing}; "
                f"their sockets opened (s from the reference time): {held}"
            )
        await asyncio.sleep(0.05)


def describe(clients: list[ChatClient], t0: float) -> str:
    """One line per client: its sockets (seconds from ``t0``) and how they ended."""

    def at(times: list[float]) -> list[float]:
        return [round(t - t0, 2) for t in times]

    def codes(errors: list[dict]) -> dict:
        return dict(Counter(e.get("code") for e in errors))

    return "\n".join(
        f"{c.name}: welcomed {at(c.welcomed_at)} dropped {at(c.dropped_at)} "
        f"last live {at(c.live_at[-1:])} acks {len(c.acks)}/{c.to_send} "
        f"closes {dict(Counter(c.close_codes))} errors {codes(c.errors)}"
        for c in clients
    )


@contextlib.contextmanager
def explained(clients: list[ChatClient], t0: float, log_path: Path | None) -> Iterator[None]:
    """An AssertionError inside gets ``describe(clients, t0)`` and the server's
    last warnings (the log's lines that are not access lines) appended."""
    try:
        yield
    except AssertionError as exc:
        lines = log_path.read_text(errors="replace").splitlines() if log_path else []
        warnings = [line for line in lines if "warning" in line or "error" in line]
        exc.args = (
            f"{exc}\n{describe(clients, t0)}\nserver warnings ({len(warnings)}), last 15:\n"
            + "\n".join(w[:300] for w in warnings[-15:]),
        )
        raise


def by_room(clients: list[ChatClient]) -> dict[str, list[ChatClient]]:
    rooms: dict[str, list[ChatClient]] = {}
    for c in clients:
        rooms.setdefault(c.room, []).append(c)
    return rooms


ROOMS = 3
PER_ROOM = 5
# Per-user chat limit raised: this run measures delivery, not flood control.
DAPHNE_ENV = {"CHAT_RATE_PER_S": "1000", "CHAT_RATE_BURST": "1000"}


@pytest.fixture(name="people")
def people_fixture(django_user_model, owner):
    """(room slug, session cookie) for ROOMS x PER_ROOM members, each a separate user."""
    from django.test import Client

    out = []
    for r in range(ROOMS):
        room = room_services.room_create(
            owner=owner, name=f"Fault {r}", slug=f"fault-{r}", capacity=12, guest_access=False
        )
        invite = room.invites.first()
        for i in range(PER_ROOM):
            # No password (no slow hash): these users only need a session.
            user = django_user_model.objects.create(username=f"f{r}u{i}")
            room_services.membership_join(invite=invite, user=user)
            client = Client()
            client.force_login(user)
            out.append((room.slug, client.cookies["sessionid"].value))
    return out


def make_clients(people, port, *, to_send=20, send_every_s=0.15):
    return [
        ChatClient(
            name=f"c{n}",
            url=f"ws://127.0.0.1:{port}/ws/rooms/{slug}/",
            cookie=cookie,
            origin=f"http://127.0.0.1:{port}",
            room=slug,
            to_send=to_send,
            send_every_s=send_every_s,
        )
        for n, (slug, cookie) in enumerate(people)
    ]


def assert_contract(clients):
    summaries = []
    for slug, members in by_room(clients).items():
        rows = list(
            Message.objects.filter(room__slug=slug).order_by("seq").values_list("seq", "client_id")
        )
        summaries.append(check_logs(members, db_rows=rows))
    assert sum(s["acked"] for s in summaries) == sum(c.to_send for c in clients)
    return summaries
