"""The multiprocess metrics directory: wiped by the first process of a run, and what a
scrape forgets of dead processes (videochat/metricsdir.py, videochat/metricsview.py)."""

import os
import subprocess
import sys

from prometheus_client.mmap_dict import MmapedDict

from videochat import metricsdir, metricsview


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def write(path, name: str, value: float) -> None:
    store = MmapedDict(str(path / name))
    store.write_value("k", value, 0.0)
    store.close()


# monkeypatch puts the test process's own PROMETHEUS_MULTIPROC_DIR back afterwards.


def test_the_first_process_of_a_run_empties_the_directory(tmp_path, monkeypatch):
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR")
    gone = dead_pid()
    write(tmp_path, f"counter_{gone}.db", 5)
    write(tmp_path, f"gauge_livesum_{gone}.db", 2)
    assert metricsdir.multiproc_dir_prepare(tmp_path) == tmp_path
    assert metricsdir.files_by_pid(tmp_path) == {}


def test_a_process_joining_a_running_run_keeps_its_counts(tmp_path, monkeypatch):
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR")
    alive = os.getppid()  # pytest's parent: alive for the whole test
    write(tmp_path, f"counter_{alive}.db", 5)
    write(tmp_path, f"gauge_livesum_{os.getpid()}.db", 3)  # a dead namesake's
    metricsdir.multiproc_dir_prepare(tmp_path)
    left = {f.name for fs in metricsdir.files_by_pid(tmp_path).values() for f in fs}
    assert left == {f"counter_{alive}.db"}


def test_a_directory_set_by_the_environment_is_never_wiped(tmp_path, monkeypatch):
    gone = dead_pid()
    write(tmp_path, f"counter_{gone}.db", 5)
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    metricsdir.multiproc_dir_prepare(tmp_path / "unused")
    assert list(metricsdir.files_by_pid(tmp_path)) == [gone]


def test_a_scrape_forgets_dead_processes_live_gauges_and_empty_files_only(tmp_path):
    gone = dead_pid()
    write(tmp_path, f"gauge_livesum_{gone}.db", 4)  # sockets it held: gone with it
    write(tmp_path, f"counter_{gone}.db", 7)  # what it counted: stays in the sums
    write(tmp_path, f"histogram_{gone}.db", 0)  # nothing recorded (an rq work horse)
    alive = os.getppid()
    write(tmp_path, f"gauge_livesum_{alive}.db", 1)
    metricsview.dead_processes_forget(str(tmp_path))
    left = {f.name for fs in metricsdir.files_by_pid(tmp_path).values() for f in fs}
    assert left == {f"counter_{gone}.db", f"gauge_livesum_{alive}.db"}
