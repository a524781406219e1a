"""Training and evaluation of the freeze predictor (quality/) and their commands,
on simulated two-peer runs written as lab run directories (pure logic: the
shipped model is trained on lab recordings, quality/recordings/)."""

import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from quality.dataset import link_series
from quality.evaluation import alarms_model, alarms_reactive, score
from quality.features import FEATURES
from quality.recordings import run_write_compact, runs_find
from quality.training import model_fit
from tests.quality_sim import run_simulate


def write_lab_run(root: Path, run) -> Path:
    """A run directory as bin/lab writes it (docs/lab.md): run.json, samples.jsonl."""
    d = root / run.id
    d.mkdir(parents=True)
    (d / "run.json").write_text(
        json.dumps({"run": run.id, "profile": {"name": run.profile}, "mode": run.mode})
    )
    with (d / "samples.jsonl").open("w") as f:
        for (sender, receiver), samples in run.links.items():
            for s in samples:
                doc = {"room": "lab", "from_peer": sender, "to_peer": receiver, "at": s["t"] + 3}
                doc.update(s, peer=receiver)
                f.write(json.dumps(doc) + "\n")
    return d


@pytest.fixture
def lab(tmp_path):
    root = tmp_path / "lab"
    for i in range(6):
        write_lab_run(root, run_simulate(f"sim-{i}", seed=i, mode="off" if i % 2 else "reactive"))
    return root


def run_cmd(name, *args):
    out = StringIO()
    call_command(name, *args, stdout=out)
    return out.getvalue()


def test_a_compact_recording_reads_back_the_same_and_is_byte_stable(lab, tmp_path):
    (run,) = runs_find([lab / "sim-0"])
    assert run.profile == "sim" and run.mode == "reactive"
    a = run_write_compact(run, tmp_path / "rec")
    first = a.read_bytes()
    (back,) = runs_find([a])
    assert back.header() == run.header()
    assert back.links == run.links
    assert run_write_compact(back, tmp_path / "rec").read_bytes() == first
    assert len(first) < 20_000


def test_the_model_warns_earlier_than_the_reactive_rules_on_held_out_runs(lab):
    runs = runs_find([lab])
    train = [ls for r in runs[:4] for ls in link_series(r)]
    held = [ls for r in runs[4:] for ls in link_series(r)]
    model = model_fit(train)
    assert model["features"] == list(FEATURES)
    assert 0 < model["threshold"] < 1
    assert model["trained"]["runs"] == ["sim-0", "sim-1", "sim-2", "sim-3"]
    ours = score(held, [alarms_model(ls, model) for ls in held])
    reactive = score(held, [alarms_reactive(ls) for ls in held])
    assert ours["freezes"] == reactive["freezes"] == 8
    assert ours["recall_2s"] >= 0.75 and ours["false_alarm_share"] <= 0.2
    assert reactive["recall_2s"] < ours["recall_2s"]
    assert ours["lead_s"]["median"] >= 2


def test_train_then_evaluate_on_held_out_runs_prints_both_predictors(lab, tmp_path):
    out = tmp_path / "model.json"
    train_runs = [str(lab / f"sim-{i}") for i in range(4)]
    said = run_cmd("quality_train", "--runs", *train_runs, "--out", str(out))
    assert "trained on 4 runs" in said and f"wrote {out}" in said
    model = json.loads(out.read_text())
    assert model["kind"] == "logistic" and len(model["coef"]) == len(FEATURES)

    table = run_cmd("quality_evaluate", "--runs", str(lab), "--model", str(out))
    assert "2 held-out runs" in table  # the 4 training runs are left out
    assert "reactive ladder" in table and f"model (p >= {model['threshold']})" in table
    report = json.loads(table[table.index("{") :])
    assert report["runs"] == ["sim-4", "sim-5"]
    assert {r["mode"] for r in report["freeze_time"]} == {"off", "reactive"}
    # Per profile too, so an abrupt profile is not hidden behind an average.
    assert list(report["by_profile"]) == ["sim"]
    assert report["by_profile"]["sim"]["reactive ladder"] == report["predictors"]["reactive ladder"]
    assert "-- sim" in table
    # Alarm episodes beside the per-sample count, in the table and the JSON.
    assert "episodes" in table and "ep prec" in table
    for sc in report["predictors"].values():
        assert 0 <= sc["episodes"]["alarms"] <= sc["alarms"]

    cv = json.loads(run_cmd("quality_evaluate", "--runs", str(lab), "--cross-validate", "--json"))
    assert len(cv["runs"]) == 6
    assert cv["predictors"]["model, leave-one-run-out"]["freezes"] == 24


def test_compact_command_writes_one_file_per_run(lab, tmp_path):
    said = run_cmd("quality_compact", "--runs", str(lab), "--out", str(tmp_path / "rec"))
    assert said.count(".jsonl.gz") == 6
    assert len(runs_find([tmp_path / "rec"])) == 6


def test_bad_input_is_a_message_not_a_traceback(lab, tmp_path):
    with pytest.raises(CommandError, match="no such file or directory"):
        run_cmd("quality_train", "--runs", str(tmp_path / "nope"))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CommandError, match="holds no lab run"):
        run_cmd("quality_evaluate", "--runs", str(empty))
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "samples.jsonl").write_text('{"from_peer": "a", "to_peer": "b", "t": 1}\n{oops\n')
    with pytest.raises(CommandError, match=r"samples.jsonl:2: not JSON"):
        run_cmd("quality_train", "--runs", str(bad))
    (bad / "samples.jsonl").write_text('{"from_peer": "a", "t": 1}\n')
    with pytest.raises(CommandError, match=r"samples.jsonl:1: a sample needs 'from_peer'"):
        run_cmd("quality_train", "--runs", str(bad))
    (bad / "samples.jsonl").write_text('{"from_peer": "a", "to_peer": "b", "t": 1}\n')
    with pytest.raises(CommandError, match="samples from both ends"):
        run_cmd("quality_train", "--runs", str(bad))
    calm = tmp_path / "calm"
    write_lab_run(calm, run_simulate("calm", seed=1, spells=0))
    with pytest.raises(CommandError, match="need at least 3 of each"):
        run_cmd("quality_train", "--runs", str(calm), "--out", str(tmp_path / "m.json"))
    with pytest.raises(CommandError, match="--horizon"):
        run_cmd("quality_train", "--runs", str(lab), "--horizon", "0")
    with pytest.raises(CommandError, match="no such directory"):
        run_cmd("quality_train", "--runs", str(lab), "--out", str(tmp_path / "x" / "m.json"))
    (tmp_path / "old.json").write_text(json.dumps({"features": ["rtt"]}))
    with pytest.raises(CommandError, match="retrain"):
        run_cmd("quality_evaluate", "--runs", str(lab), "--model", str(tmp_path / "old.json"))
    with pytest.raises(CommandError, match="no such file"):
        run_cmd("quality_evaluate", "--runs", str(lab), "--model", str(tmp_path / "none.json"))
    with pytest.raises(CommandError, match="given twice"):
        run_cmd("quality_evaluate", "--runs", str(lab), str(lab / "sim-0"))
    out = tmp_path / "m.json"
    run_cmd("quality_train", "--runs", str(lab / "sim-0"), str(lab / "sim-1"), "--out", str(out))
    with pytest.raises(CommandError, match="used to train"):
        run_cmd("quality_evaluate", "--runs", str(lab / "sim-0"), "--model", str(out))


def test_a_lab_folder_without_a_run_id_is_named_by_session_and_carries_the_lab_stalls(tmp_path):
    run = run_simulate("x", seed=3)
    folder = write_lab_run(tmp_path / "18-50", run)
    folder = folder.rename(tmp_path / "18-50" / "tunnel--off")
    meta = {"profile": "tunnel", "mode": "off", "peers": [
        {"peer": "A", "name": "peer0"}, {"peer": "B", "name": "peer1"}]}  # fmt: skip
    (folder / "run.json").write_text(json.dumps(meta))
    (folder / "summary.json").write_text(
        json.dumps({"links": {"peer0\u2192peer1": {"freeze_ms_ge_1s": 11501}}})
    )
    (back,) = runs_find([run_write_compact(runs_find([folder])[0], tmp_path / "rec")])
    assert back.id == "18-50--tunnel--off"
    by_link = {ls.link: ls for ls in link_series(back)}
    assert by_link[("A", "B")].lab_stall_ms == 11501
    assert by_link[("B", "A")].lab_stall_ms is None


def test_the_shipped_model_was_trained_on_the_shipped_recordings():
    root = Path(__file__).resolve().parent.parent
    model = json.loads((root / "static/js/quality-model.json").read_text())
    assert model["features"] == list(FEATURES)
    runs = runs_find([root / "quality/recordings"])
    assert set(model["trained"]["runs"]) <= {r.id for r in runs}
    assert all(len(link_series(r)) == 2 for r in runs)


def test_a_run_whose_page_could_not_take_its_mode_is_filed_as_old_policy(tmp_path):
    folder = write_lab_run(tmp_path / "s", run_simulate("m", seed=4))
    meta = json.loads((folder / "run.json").read_text())
    (folder / "run.json").write_text(json.dumps(meta | {"mode": "off", "mode_applied": False}))
    assert runs_find([folder])[0].mode == "old-policy"
    (folder / "run.json").write_text(json.dumps(meta | {"mode": "off", "mode_applied": True}))
    assert runs_find([folder])[0].mode == "off"


def _replayed(samples):
    from quality.dataset import LinkSeries

    return alarms_reactive(LinkSeries("r", "p", "off", ("A", "B"), samples, []))


def test_the_reactive_replay_is_the_browser_ladder():
    # quality/replay_ladder.mjs runs static/js/call-quality.js SendLadder: a bitrate far
    # under full's need steps down, far over it does not; loss twice at 10 % steps down.
    def view(t, **kw):
        return {"t": t, "rtt": 40.0, "loss_out": 0.0, "bw_out": 2000.0, "send_kbps": 400.0,
                "qlr": "bandwidth"} | kw  # fmt: skip

    calm = [view(i * 2000) for i in range(5)]
    assert _replayed(calm + [view(10_000, bw_out=1500.0)]) == [False] * 6
    assert _replayed(calm + [view(10_000, bw_out=150.0)])[-1] is True
    lossy = [view(i * 2000) for i in range(2)] + [
        view(4000, loss_out=0.12),
        view(6000, loss_out=0.1),
    ]
    assert _replayed(lossy) == [False, False, False, True]
    # The warm-up: no bandwidth step in the first 6 s.
    assert _replayed([view(0, bw_out=100.0), view(2000, bw_out=100.0)]) == [False, False]


def test_when_no_threshold_keeps_false_alarms_low_it_balances_recall_and_precision(lab):
    from quality.evaluation import threshold_choose
    from quality.features import probability

    series = [ls for r in runs_find([lab]) for ls in link_series(r)]
    model = model_fit(series)

    def prob(ls):
        return [probability(model, x) for x in ls.x]

    th, sc = threshold_choose(series, prob, max_false_share=0.0)
    for k in range(5, 100, 5):
        other = score(series, [[p >= k / 100 for p in prob(ls)] for ls in series])
        assert (other["recall_2s"] or 0) * (other["precision"] or 0) <= sc["recall_2s"] * sc[
            "precision"
        ]
    assert sc == score(series, [[p >= th for p in prob(ls)] for ls in series])


def test_the_threshold_stays_above_what_the_predictor_says_on_a_clean_path(lab):
    from quality.evaluation import threshold_choose

    series = [ls for r in runs_find([lab]) for ls in link_series(r)]

    def prob(ls):  # 0.5 before a freeze, 0.1 otherwise, 0.6 on a calm sample
        return [0.6 if c else 0.5 if y else 0.1 for c, y in zip(ls.calm, ls.y, strict=True)]

    for ls in series:
        ls.calm = [False] * len(ls.y)
    assert threshold_choose(series, prob)[0] == 0.5
    # Some samples no freeze follows are of a clean path, where it says 0.6.
    for ls in series:
        ls.calm = [
            u and not y and i % 3 == 0 for i, (u, y) in enumerate(zip(ls.use, ls.y, strict=True))
        ]
    assert any(any(ls.calm) for ls in series)
    assert threshold_choose(series, prob, calm_margin=0.05)[0] >= 0.65


def test_alarm_episodes_merge_one_quiet_sample_and_are_true_when_a_freeze_starts_in_them():
    from quality.dataset import LinkSeries
    from quality.evaluation import alarm_episodes
    from quality.labels import Episode

    samples = [{"t": i * 2000} for i in range(20)]
    ls = LinkSeries("r", "p", "off", ("A", "B"), samples, [Episode(25_000, 27_000, 500.0)])
    ls.use = [True] * 20
    ls.use[12] = ls.use[13] = False  # during the freeze: skipped, neither fires nor ends
    ls.y = [int(t < 25_000 <= t + 6000) for t in ls.t]
    fire = {1, 2, 4, 5, 8, 9, 10, 11, 14, 17}
    al = [i in fire for i in range(20)]
    # 1-5 (one quiet sample merged), 8-14 (across the freeze), 17 alone (two quiet before).
    assert alarm_episodes(ls, al) == [(1, 5), (8, 14), (17, 17)]
    sc = score([ls], [al])
    # Per sample: 10 alarms, true are 10 and 11 (t 20 s and 22 s: the onset 25 s follows
    # within 6 s); per episode: 3, of which 8-14 is true (the freeze starts in it).
    assert (sc["alarms"], sc["precision"]) == (10, 0.2)
    assert sc["episodes"]["alarms"] == 3 and sc["episodes"]["true"] == 1
    assert sc["episodes"]["precision"] == 0.333
    assert sc["episodes"]["length_s"] == {"min": 0.0, "median": 8.0, "max": 12.0}
    # An episode ending before the onset is still true when the onset is within the
    # horizon after its last sample, as its last alarm is true per sample.
    al2 = [i in {9, 10} for i in range(20)]
    assert score([ls], [al2])["episodes"]["true"] == 1
    al3 = [i in {5, 6} for i in range(20)]  # ends at 12 s: 25 s is more than 6 s later
    assert score([ls], [al3])["episodes"]["true"] == 0
