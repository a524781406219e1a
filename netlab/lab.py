"""The network lab's call: the product's own services, one impairment relay and one
daphne per seat, headless Chromium peers, a profile played over time, a run folder.

How each browser gets ITS relay: every seat (each headless peer, and the person
who joins with ``--keep-open``) has its own daphne process whose ``TURN_URLS``
names that seat's relay port (``turn:127.0.0.1:<relay port>?transport=udp``),
with ``ICE_RELAY_ONLY=1``. The daphnes share the database, Redis and MongoDB, so
they are one product (as behind a load balancer, docs/operations.md); a seat's
page, its TURN credentials and every ``turn.refresh`` come from its own daphne,
so no product code knows about the lab. Every relay forwards to one coturn.

A run folder (``run.json``, ``samples.jsonl``, ``events.jsonl``, ``ticks.jsonl``,
``report.html``) is the recording format the quality model trains on
(docs/lab.md).
"""

from __future__ import annotations

import contextlib
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from netlab.profiles import Profile
from netlab.relay import DOWN, UP, Impairment, Relay, RelayHost
from videochat import devstack
from videochat.devstack import Service

SAMPLER_JS = (Path(__file__).with_name("pagesampler.js")).read_text()
MODES = ("off", "reactive", "predictive")
ROOM_SLUG = "lab"
PULL_EVERY_S = 1.0


@dataclass
class Seat:
    index: int
    name: str
    relay: Relay
    web: Service
    headless: bool = True

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.web.port}"

    @property
    def profile_peer(self) -> int:
        """Which profile peer this seat plays: the person's seat plays peer 0 (the
        impaired one), so they feel the profile."""
        return self.index if self.headless else 0


@dataclass
class LabStack:
    """coturn, a relay host and one daphne per seat, for one lab session."""

    run_dir: Path
    env: dict[str, str]
    seats: int = 2
    human: bool = False
    secret: str = field(default_factory=lambda: secrets.token_hex(16))
    coturn: Service | None = None
    host: RelayHost | None = None
    seat_list: list[Seat] = field(default_factory=list)

    def start(self) -> LabStack:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        try:
            self.coturn = devstack.coturn_service(self.run_dir, self.secret).start()
            assert self.coturn.port is not None
            self.host = RelayHost()
            names = [f"peer{i}" for i in range(self.seats)] + (["you"] if self.human else [])
            for i, name in enumerate(names):
                relay = self.host.add(("127.0.0.1", self.coturn.port), seed=i + 1)
                env = {
                    **self.env,
                    "TURN_URLS": f"turn:127.0.0.1:{relay.port}?transport=udp",
                    "TURN_SECRET": self.secret,
                    "TURN_TTL": "600",
                    "ICE_RELAY_ONLY": "1",
                }
                web = devstack.daphne_service(self.run_dir, env=env).start()
                self.seat_list.append(Seat(i, name, relay, web, headless=name != "you"))
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for seat in self.seat_list:
            seat.web.stop()
        if self.host is not None:
            self.host.close()
        if self.coturn is not None:
            self.coturn.stop()

    def impair(self, seat: Seat, *, up: Impairment, down: Impairment) -> None:
        assert self.host is not None
        self.host.set(seat.relay, up=up, down=down)

    def counters(self) -> dict[str, Any]:
        assert self.host is not None
        return {seat.name: self.host.counters(seat.relay) for seat in self.seat_list}


@dataclass
class RunRecord:
    """What one profile in one mode produced (then written to its run folder)."""

    profile: str
    mode: str
    started_ms: int = 0
    ended_ms: int = 0
    phases: list[dict[str, Any]] = field(default_factory=list)
    peers: list[dict[str, Any]] = field(default_factory=list)
    samples: list[dict[str, Any]] = field(default_factory=list)
    ticks: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    mode_applied: bool = False
    samples_source: str = "lab-sampler"
    counters: dict[str, Any] = field(default_factory=dict)
    ids_after: dict[str, list[str]] = field(default_factory=dict)


def now_ms() -> int:
    return int(time.time() * 1000)


def open_seat_page(context: Any, seat: Seat, cookie: str, slug: str = ROOM_SLUG) -> Any:
    context.add_cookies([{"name": "sessionid", "value": cookie, "url": seat.base}])
    page = context.new_page()
    page.goto(f"{seat.base}/r/{slug}/")
    page.wait_for_selector("#connection-state[data-state=open]")
    page.evaluate(SAMPLER_JS)
    return page


def set_mode(page: Any, mode: str) -> bool:
    """Ask the page's adaptation to run in ``mode`` (``window.huddleCall.setAdaptMode``);
    False when the page has no such hook (the mode is then only a label)."""
    return bool(
        page.evaluate(
            """(mode) => {
              const call = window.huddleCall;
              if (typeof call?.setAdaptMode !== "function") return false;
              call.setAdaptMode(mode);
              return true;
            }""",
            mode,
        )
    )


def join(page: Any) -> None:
    page.wait_for_selector("#join-call:not([disabled])")
    page.click("#join-call")
    page.wait_for_selector("#in-call", state="visible")


def decoding_from(page: Any) -> dict[str, int]:
    stats = page.evaluate("window.huddleCall.stats()")
    return {peer: s["framesDecoded"] for peer, s in stats.items()}


def wait_media(pages: list[Any], *, timeout: float) -> None:
    """Until every page decodes video from every other headless page."""
    want = len(pages) - 1
    deadline = time.monotonic() + timeout
    while True:
        ok = [sum(1 for n in decoding_from(p).values() if n > 0) >= want for p in pages]
        if all(ok):
            return
        if time.monotonic() > deadline:
            traces = [p.evaluate("window.huddleCall.trace.slice(-30)") for p in pages]
            raise RuntimeError(f"no media between the lab's peers in {timeout:.0f}s: {traces}")
        pages[0].wait_for_timeout(200)


def pull(pages: list[Any], ids: list[str], record: RunRecord) -> None:
    for page, me in zip(pages, ids, strict=True):
        got = page.evaluate("window.__lab.drain()")
        for s in got["samples"]:
            record.samples.append({"from_peer": me, "to_peer": s["peer"], "at": s["t"], **s})
        for t in got["ticks"]:
            record.ticks.append({"from_peer": me, **t})
        seen = {json.dumps(e, sort_keys=True, default=str) for e in record.events}
        for e in got.get("events") or []:
            e = {"from_peer": me, **(e if isinstance(e, dict) else {"event": e})}
            key = json.dumps(e, sort_keys=True, default=str)
            if key not in seen:
                record.events.append(e)
                seen.add(key)


def play(
    stack: LabStack,
    browser: Any,
    *,
    profile: Profile,
    mode: str,
    cookies: dict[str, str],
    slug: str = ROOM_SLUG,
    media_timeout: float = 40.0,
    on_phase: Callable[[str], None] | None = None,
    video_file: Path | None = None,
) -> RunRecord:
    """One profile in one mode: headless seats join, the phases play, pages leave."""
    record = RunRecord(profile=profile.name, mode=mode)
    seats = [s for s in stack.seat_list if s.headless]
    contexts, pages = [], []
    try:
        for seat in seats:
            ctx = browser.new_context()
            ctx.set_default_timeout(devstack.scaled(20) * 1000)
            contexts.append(ctx)
            pages.append(open_seat_page(ctx, seat, cookies[seat.name], slug))
        record.mode_applied = all([set_mode(p, mode) for p in pages])
        for page in pages:
            join(page)
        wait_media(pages, timeout=devstack.scaled(media_timeout))
        ids = [p.evaluate("window.huddleCall.state.selfId") for p in pages]
        record.peers = [
            {
                "seat": s.index,
                "name": s.name,
                "peer": pid,
                "relay_port": s.relay.port,
                "web_port": s.web.port,
                "profile_peer": s.profile_peer,
            }
            for s, pid in zip(seats, ids, strict=True)
        ]
        record.started_ms = now_ms()
        start = time.monotonic()
        for begin, end, phase in profile.timeline():
            for seat in stack.seat_list:
                p = seat.profile_peer
                stack.impair(seat, up=phase.impairment(p, UP), down=phase.impairment(p, DOWN))
            record.phases.append(
                {
                    "label": phase.label,
                    "start_ms": now_ms(),
                    "offset_s": begin,
                    "seconds": phase.seconds,
                    "paths": phase.describe(),
                }
            )
            if on_phase:
                on_phase(f"{profile.name} [{mode}] {begin:5.0f}s {phase.label}")
            while time.monotonic() - start < end:
                pages[0].wait_for_timeout(
                    1000 * min(PULL_EVERY_S, max(0.05, end - (time.monotonic() - start)))
                )
                pull(pages, ids, record)
            record.phases[-1]["end_ms"] = now_ms()
            record.phases[-1]["relay_counters"] = stack.counters()
        # One more sample period so the last phase's last samples arrive.
        pages[0].wait_for_timeout(2200)
        pull(pages, ids, record)
        record.ended_ms = now_ms()
        record.counters = stack.counters()
        # Who is who at the end, and whom each page still has a connection with: an
        # outage must not have made anyone rejoin under a new id (or reload: the
        # sampler lives in the page, so a reload would have failed the pulls above).
        record.ids_after = {
            me: sorted(p.evaluate("[...window.huddleCall.state.peers.keys()]"))
            for me, p in zip(
                [p.evaluate("window.huddleCall.state.selfId") for p in pages], pages, strict=True
            )
        }
    finally:
        for seat in stack.seat_list:
            stack.impair(seat, up=Impairment(), down=Impairment())
        for page in pages:
            # Leave on purpose, so the next run's peers do not wait out a resume grace.
            with contextlib.suppress(Exception):
                page.evaluate("window.huddleCall.leave()")
        for ctx in contexts:
            ctx.close()
    return record


def stored_samples(slug: str, since_ms: int, until_ms: int) -> list[dict[str, Any]]:
    """The run's samples as the product stored them (MongoDB ``call_stats``)."""
    from datetime import UTC, datetime

    from rooms.telemetry import samples_for

    since = datetime.fromtimestamp(since_ms / 1000, tz=UTC)
    docs = samples_for(room=slug, since=since)
    out = []
    for doc in docs:
        doc = {k: v for k, v in doc.items() if k != "_id"}
        for key in ("at", "expire_at"):
            if isinstance(doc.get(key), datetime):
                at = doc[key]
                if at.tzinfo is None:
                    at = at.replace(tzinfo=UTC)
                doc[key] = int(at.timestamp() * 1000)
        if isinstance(doc.get("at"), int) and doc["at"] > until_ms:
            continue
        out.append(doc)
    return out


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    with path.open("w") as f:
        for row in rows:
            f.write(json.dumps(row, default=str) + "\n")


def write_run(record: RunRecord, folder: Path, *, extra: dict[str, Any]) -> None:
    """The contract's run folder: run.json, samples.jsonl, events.jsonl (+ ticks.jsonl)."""
    folder.mkdir(parents=True, exist_ok=True)

    write_jsonl(folder / "samples.jsonl", record.samples)
    write_jsonl(folder / "events.jsonl", record.events)
    write_jsonl(folder / "ticks.jsonl", record.ticks)
    run = {
        "profile": record.profile,
        "mode": record.mode,
        "mode_applied": record.mode_applied,
        "started_ms": record.started_ms,
        "ended_ms": record.ended_ms,
        "phases": record.phases,
        "peers": record.peers,
        "samples_source": record.samples_source,
        "relay_counters": record.counters,
        "ids_after": record.ids_after,
        **extra,
    }
    (folder / "run.json").write_text(json.dumps(run, indent=1, default=str))
