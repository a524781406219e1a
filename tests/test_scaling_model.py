"""The forecast model, the node arithmetic and the replay, on synthetic traces
(pure numpy: no services)."""

import numpy as np
import pytest

from scaling.evaluation import DAY, replay, trace_generate, trace_read_csv
from scaling.model import HoltWinters, NotEnoughHistory, nodes_needed, resample

PERIOD = DAY // 5


def daily(days: int, *, noise: float = 0.0, seed: int = 0) -> np.ndarray:
    """Sockets per 5 minutes: 500 at night, a morning ramp to 6,000, evening decline."""
    h = np.arange(days * PERIOD) % PERIOD * 5 / 60
    shape = 500 + 5500 / (1 + np.exp(-(h - 8.5) / 0.5)) / (1 + np.exp((h - 18) / 0.8))
    rng = np.random.default_rng(seed)
    return shape * (1 + rng.normal(0, noise, len(shape)))


def test_next_hour_forecast_of_a_noisy_daily_series_is_within_5_percent():
    y = daily(8, noise=0.03, seed=3)
    errors = []
    for day in (6, 7):  # every hour of two held-out days
        model = HoltWinters.fit(y[: day * PERIOD], period=PERIOD)
        for k in range(day * PERIOD, (day + 1) * PERIOD, 12):
            while model.t < k:
                model.update(y[model.t])
            truth = daily(8)[k : k + 12]
            errors.append(np.mean(np.abs(model.forecast(12) - truth) / truth))
    assert np.mean(errors) < 0.05


def test_forecast_at_dawn_sees_the_morning_ramp_coming():
    y = daily(4)
    seven = 7 * 12  # 07:00 on the fifth day
    model = HoltWinters.fit(y[: 4 * PERIOD], period=PERIOD)
    for _ in range(seven):
        model.update(daily(5)[model.t])
    ahead = model.forecast(30)  # to 09:30
    assert ahead[0] < 1000 and ahead[-1] > 5000  # the last value alone would say ~700
    assert np.all(np.diff(ahead) > -1)


def test_fit_refuses_less_than_two_days():
    with pytest.raises(NotEnoughHistory, match="need at least 2 periods"):
        HoltWinters.fit(daily(2)[:-1], period=PERIOD)
    with pytest.raises(ValueError, match="NaN"):
        HoltWinters.fit(np.full(2 * PERIOD, np.nan), period=PERIOD)


def test_nodes_needed_rounds_up_at_the_target_and_stays_within_bounds():
    kw = {"capacity": 1000, "target_utilisation": 0.7, "min_nodes": 2, "max_nodes": 10}
    assert nodes_needed(load=0, **kw) == 2
    assert nodes_needed(load=2100, **kw) == 3  # exactly 3 x 700
    assert nodes_needed(load=2101, **kw) == 4
    assert nodes_needed(load=1e9, **kw) == 10
    with pytest.raises(ValueError):
        nodes_needed(load=1, capacity=0, target_utilisation=0.7, min_nodes=1, max_nodes=2)


def test_resample_averages_whole_steps():
    assert resample(np.arange(12.0), step=5).tolist() == [2.0, 7.0]


def test_a_spike_free_ramp_gets_its_nodes_before_the_reactive_rule():
    minutes = np.repeat(daily(6), 5)  # no noise, no spikes
    report = replay(minutes, train_days=4, capacity=1000, boot_minutes=5)
    lead = report["lead_minutes"]
    assert lead["levels_compared"] >= 2 * 7  # 1 -> 9 nodes on each held-out morning
    assert lead["min"] > 0 and lead["median"] >= 30
    assert lead["reactive_only_levels"] == 0
    pred, react = report["policies"]["predictive"], report["policies"]["reactive"]
    assert pred["overloaded_minutes"] == 0
    assert pred["above_target_minutes"] < react["above_target_minutes"]
    assert report["forecast"]["mape_pct"] < 2


def test_generated_trace_is_seeded_and_daily():
    a = trace_generate(days=3, seed=5, peak=1000)
    assert np.array_equal(a, trace_generate(days=3, seed=5, peak=1000))
    assert not np.array_equal(a, trace_generate(days=3, seed=6, peak=1000))
    day = a[:DAY]
    assert day[3 * 60] < 0.15 * day[11 * 60]  # 03:00 is quiet, 11:00 busy


def test_replay_needs_a_held_out_day():
    with pytest.raises(ValueError, match="held-out day"):
        replay(trace_generate(days=3, seed=1, peak=100), train_days=3, capacity=10)


def test_csv_trace_reads_minutes_and_names_the_bad_line(tmp_path):
    good = tmp_path / "good.csv"
    good.write_text(
        "timestamp,sockets\n2026-11-02T00:00:00+00:00,10\n2026-11-02T00:01:00+00:00,12.5\n"
    )
    assert trace_read_csv(good).tolist() == [10.0, 12.5]
    gap = tmp_path / "gap.csv"
    gap.write_text("0,10\n1,11\n3,12\n")
    with pytest.raises(ValueError, match="gap.csv:3: rows must be one minute apart"):
        trace_read_csv(gap)
    bad = tmp_path / "bad.csv"
    bad.write_text("0,10\n1,lots\n")
    with pytest.raises(ValueError, match="bad.csv:2: load 'lots' is not a number"):
        trace_read_csv(bad)
