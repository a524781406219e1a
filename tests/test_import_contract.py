"""The import contract (pyproject.toml [tool.importlinter]) holds, and it can fail:
a service importing the consumer again is caught."""

import shutil
import subprocess
import sys
from pathlib import Path

from videochat.devstack import BASE_DIR

PACKAGES = (
    "rooms",
    "moderation",
    "messaging",
    "deliveries",
    "videochat",
    "scaling",
    "netlab",
    "quality",
)
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def copy_of_the_project(dest: Path) -> Path:
    for package in PACKAGES:
        shutil.copytree(
            BASE_DIR / package, dest / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(BASE_DIR / "pyproject.toml", dest / "pyproject.toml")
    return dest


def lint_imports(project: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", "pyproject.toml", "--no-cache"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(project)},
    )


def test_the_contract_is_kept_and_breaks_when_a_service_imports_the_consumer(tmp_path):
    project = copy_of_the_project(tmp_path)
    kept = lint_imports(project)
    assert kept.returncode == 0, kept.stdout + kept.stderr

    services = project / "rooms" / "services.py"
    services.write_text(services.read_text() + "\nfrom rooms.consumers import RoomConsumer\n")
    broken = lint_imports(project)
    assert broken.returncode != 0
    out = " ".join(broken.stdout.split())  # rich wraps long lines
    assert "Services never import the consumer" in out and "BROKEN" in out
    assert "rooms.services -> rooms.consumers" in out
