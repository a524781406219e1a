"""The lab's profiles (netlab/profiles.py) as docs/lab.md describes them (pure)."""

from pathlib import Path

import pytest

from netlab.profiles import FULL, PROFILES, get
from netlab.relay import DOWN, UP

DOCS = (Path(__file__).resolve().parent.parent / "docs/lab.md").read_text()


def test_every_full_profile_has_a_short_variant_of_about_30_s_and_a_row_in_the_docs():
    for name in FULL:
        assert get(f"{name}-short").seconds <= 30, name
        assert f"| `{name}` |" in DOCS, name


@pytest.mark.parametrize("name", ["wifi-fade", "cell-congestion", "wifi-fade-short"])
def test_the_gradual_profiles_get_worse_step_by_step_on_peer_0_both_ways(name):
    profile = PROFILES[name]
    ramp = [p for p in profile.phases if p.paths]
    assert len(ramp) == 8
    assert profile.phases[0].paths == {} and profile.phases[-1].paths == {}
    for path in ((0, UP), (0, DOWN)):
        imps = [p.paths[path] for p in ramp]
        caps = [i.rate_kbps for i in imps]
        delays = [i.delay_ms for i in imps]
        losses = [i.loss_good for i in imps]
        assert all(c is not None for c in caps)
        assert caps == sorted(caps, reverse=True) and len(set(caps)) == 8
        assert delays == sorted(delays) and losses == sorted(losses)
        assert caps[-1] == 250
