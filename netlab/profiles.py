"""Network profiles the lab plays: timed phases of impairment per peer and direction.

A profile is a list of phases played one after the other. Each phase says, for
the peers it names (by index in the call: 0 is the first headless peer, "the
impaired peer"), what their relay does to packets going ``up`` (from that
browser towards coturn) and ``down`` (from coturn to that browser). A peer or
direction a phase does not name is clean. Peer 0's one-way delays add to the
call's round trip once each: ``delay_ms=75`` both ways on peer 0 alone gives a
150 ms round trip between peer 0 and a clean peer.

Every profile starts with a clean lead-in so the call is at full quality when
trouble begins, and ends with a clean tail to watch recovery. Each has a
``-short`` variant of at most ~30 s for the test command. docs/lab.md lists
what each profile does to packets.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from netlab.relay import CLEAN, DOWN, UP, Impairment, bursty_loss, random_loss

Path = tuple[int, str]  # (peer index, direction)


@dataclass(frozen=True)
class Phase:
    seconds: float
    label: str
    paths: dict[Path, Impairment] = field(default_factory=dict)

    def impairment(self, peer: int, direction: str) -> Impairment:
        return self.paths.get((peer, direction), CLEAN)

    def describe(self) -> dict[str, dict[str, object]]:
        return {f"peer{p}:{d}": imp.as_dict() for (p, d), imp in sorted(self.paths.items())}


@dataclass(frozen=True)
class Profile:
    name: str
    summary: str
    phases: tuple[Phase, ...]

    @property
    def seconds(self) -> float:
        return sum(p.seconds for p in self.phases)

    def timeline(self) -> list[tuple[float, float, Phase]]:
        """(start, end, phase) in seconds from the start of the profile."""
        out, t = [], 0.0
        for phase in self.phases:
            out.append((t, t + phase.seconds, phase))
            t += phase.seconds
        return out


def both(peer: int, impairment: Impairment) -> dict[Path, Impairment]:
    return {(peer, UP): impairment, (peer, DOWN): impairment}


def clean(seconds: float, label: str = "clean") -> Phase:
    return Phase(seconds, label)


def _profiles(short: bool) -> list[Profile]:
    # Lead-in and tail: long enough for full quality / recovery; shorter when short.
    lead, tail = (8.0, 8.0) if short else (20.0, 25.0)
    body = 14.0 if short else 40.0

    wifi = bursty_loss(0.03, burst=3, delay_ms=10, jitter_ms=15, rate_kbps=4000)
    wifi_bad = bursty_loss(0.08, burst=5, delay_ms=20, jitter_ms=40, rate_kbps=1500)
    g3_up = random_loss(0.01, delay_ms=75, jitter_ms=20, rate_kbps=400)
    g3_down = random_loss(0.01, delay_ms=75, jitter_ms=20, rate_kbps=1500)
    mobile = bursty_loss(0.08, burst=4, delay_ms=40, jitter_ms=30)
    mobile_bad = bursty_loss(0.15, burst=6, delay_ms=60, jitter_ms=40)
    half = body / 2
    return [
        Profile(
            "clean",
            "no impairment at all (loopback through coturn: the baseline)",
            (clean(lead + body + tail),),
        ),
        Profile(
            "congested-wifi",
            "peer 0 both ways: bursty loss 3 % (bursts of 3), 10 ms +/- 15 ms, cap 4 Mbit/s; "
            "then a bad spell of 8 % in bursts of 5, 20 ms +/- 40 ms, cap 1.5 Mbit/s",
            (
                clean(lead),
                Phase(half, "busy", both(0, wifi)),
                Phase(half, "very busy", both(0, wifi_bad)),
                clean(tail, "recovered"),
            ),
        ),
        Profile(
            "3g",
            "peer 0: 75 ms +/- 20 ms each way (150 ms added round trip), 1 % random loss, "
            "cap 400 kbit/s up and 1.5 Mbit/s down",
            (
                clean(lead),
                Phase(body, "3g", {(0, UP): g3_up, (0, DOWN): g3_down}),
                clean(tail, "recovered"),
            ),
        ),
        Profile(
            "lossy-mobile",
            "peer 0 both ways: bursty loss 8 % (bursts of 4), 40 ms +/- 30 ms; then 15 % "
            "in bursts of 6, 60 ms +/- 40 ms",
            (
                clean(lead),
                Phase(half, "lossy", both(0, mobile)),
                Phase(half, "very lossy", both(0, mobile_bad)),
                clean(tail, "recovered"),
            ),
        ),
        Profile(
            "tunnel",
            "peer 0 both ways: a 10 s outage (every packet dropped, STUN and TURN too)",
            (
                clean(lead),
                Phase(10.0, "outage", both(0, Impairment(outage=True))),
                clean(tail if not short else 10.0, "out of the tunnel"),
            ),
        ),
        Profile(
            "collapse",
            "peer 0 both ways: cap 1 Mbit/s for 5 s, then 300 kbit/s (queue 200 ms, tail "
            "drop), then uncapped",
            (
                clean(lead),
                Phase(5.0 if not short else 3.0, "1 Mbit/s", both(0, Impairment(rate_kbps=1000))),
                # Short: 11 s at 300 kbit/s, so the variant stays at 30 s like the others.
                Phase(
                    body if not short else 11.0,
                    "300 kbit/s",
                    both(0, Impairment(rate_kbps=300)),
                ),
                clean(tail, "uncapped"),
            ),
        ),
        Profile(
            "loss5-rtt150",
            "peer 0 both ways: 5 % random loss and 75 ms delay (150 ms round trip to a "
            "clean peer); the issue's first target",
            (
                clean(lead),
                Phase(body, "5 % loss, 150 ms", both(0, random_loss(0.05, delay_ms=75))),
                clean(tail, "recovered"),
            ),
        ),
        Profile(
            "cap300",
            "peer 0 up (what it sends): an abrupt cap of 300 kbit/s (queue 200 ms, tail "
            "drop); the issue's second target",
            (
                clean(lead),
                Phase(body, "300 kbit/s up", {(0, UP): Impairment(rate_kbps=300)}),
                clean(tail, "uncapped"),
            ),
        ),
        # Gradual profiles: trouble with a precursor, which the abrupt ones above have
        # not by construction (docs/lab.md). Each ramp step is one phase of body / steps.
        Profile(
            "wifi-fade",
            "peer 0 both ways, walking away from the access point: in 8 equal steps the "
            "cap falls 3000 -> 250 kbit/s, random loss rises 0 -> 12 %, delay 5 -> 100 ms "
            "(+/- half of it); then back in range at once",
            (
                clean(lead),
                *(
                    Phase(
                        body / len(FADE),
                        f"fade {i + 1}/{len(FADE)}",
                        both(0, random_loss(loss, delay_ms=ms, jitter_ms=ms / 2, rate_kbps=kbps)),
                    )
                    for i, (kbps, loss, ms) in enumerate(FADE)
                ),
                clean(tail, "back in range"),
            ),
        ),
        Profile(
            "cell-congestion",
            "peer 0 both ways, a cell filling up: a deep queue (600 ms) behind a cap that "
            "falls in 8 equal steps 2500 -> 250 kbit/s while the base delay rises 20 -> "
            "150 ms (+/- a quarter); loss comes only from the full queue until the last "
            "two steps add 2 % and 5 % random loss; then the cell empties at once",
            (
                clean(lead),
                *(
                    Phase(
                        body / len(CELL),
                        f"filling {i + 1}/{len(CELL)}",
                        both(
                            0,
                            random_loss(
                                loss, delay_ms=ms, jitter_ms=ms / 4, rate_kbps=kbps, queue_ms=600
                            ),
                        ),
                    )
                    for i, (kbps, loss, ms) in enumerate(CELL)
                ),
                clean(tail, "cell emptied"),
            ),
        ),
    ]


# (cap kbit/s, random loss, one-way delay ms) per ramp step of the gradual profiles.
FADE = (
    (3000, 0.0, 5.0),
    (2000, 0.005, 10.0),
    (1400, 0.01, 20.0),
    (1000, 0.02, 30.0),
    (700, 0.03, 45.0),
    (500, 0.05, 60.0),
    (350, 0.08, 80.0),
    (250, 0.12, 100.0),
)
CELL = (
    (2500, 0.0, 20.0),
    (1800, 0.0, 30.0),
    (1200, 0.0, 45.0),
    (900, 0.0, 60.0),
    (650, 0.0, 80.0),
    (450, 0.0, 100.0),
    (350, 0.02, 120.0),
    (250, 0.05, 150.0),
)


def _build() -> dict[str, Profile]:
    out = {p.name: p for p in _profiles(short=False)}
    for p in _profiles(short=True):
        out[f"{p.name}-short"] = Profile(f"{p.name}-short", p.summary + " (short)", p.phases)
    return out


PROFILES: dict[str, Profile] = _build()
FULL = [name for name in PROFILES if not name.endswith("-short")]


def get(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"no profile {name!r}; known: {', '.join(sorted(PROFILES))}") from None
