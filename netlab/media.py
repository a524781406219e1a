"""A camera worth adapting: a Y4M clip for ``--use-file-for-fake-video-capture``.

Chromium's built-in fake camera (a still green frame with a small moving pie)
encodes to ~200 kbit/s, so a 300 kbit/s cap barely touches it and a "reduced"
level changes little. This clip (480x270, 15 fps, moving coloured blocks over
changing noise) keeps the encoder busy at about 1 Mbit/s, so caps and ladder
steps show in the numbers. Made once with numpy and cached under var/lab/media.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

WIDTH, HEIGHT, FPS, SECONDS = 480, 270, 15, 4
CACHE = Path(__file__).resolve().parent.parent / "var" / "lab" / "media"


def camera_args(camera: str = "clip") -> list[str]:
    """Chromium flags for the lab's camera: ``clip`` (this module's) or ``fake`` (its own)."""
    if camera == "fake":
        return []
    return [f"--use-file-for-fake-video-capture={clip_path(CACHE)}"]


def clip_path(folder: Path) -> Path:
    """The clip in ``folder`` (made if missing)."""
    path = folder / f"lab-{WIDTH}x{HEIGHT}-{FPS}fps.y4m"
    if path.exists():
        return path
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(14)
    tmp = path.with_suffix(".tmp")
    with tmp.open("wb") as f:
        f.write(f"YUV4MPEG2 W{WIDTH} H{HEIGHT} F{FPS}:1 Ip A1:1 C420jpeg\n".encode())
        yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH]
        for n in range(FPS * SECONDS):
            # A slowly moving gradient, eight bouncing blocks, and fine noise everywhere.
            y = ((xx + yy + 4 * n) % 256).astype(np.int16) // 2 + 40
            for b in range(8):
                bx = int((WIDTH - 60) * (0.5 + 0.5 * np.sin(0.11 * n + b)))
                by = int((HEIGHT - 60) * (0.5 + 0.5 * np.cos(0.07 * n + 2 * b)))
                y[by : by + 60, bx : bx + 60] = 40 + 25 * b
            y = y + rng.integers(-18, 19, size=y.shape)
            luma = np.clip(y, 16, 235).astype(np.uint8)
            u = np.full((HEIGHT // 2, WIDTH // 2), 128 + 40 * np.sin(0.05 * n), dtype=np.uint8)
            v = rng.integers(100, 156, size=(HEIGHT // 2, WIDTH // 2), dtype=np.uint8)
            f.write(b"FRAME\n")
            f.write(luma.tobytes())
            f.write(u.tobytes())
            f.write(v.tobytes())
    tmp.rename(path)
    return path
