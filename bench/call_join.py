"""Second participant joins -> first decoded remote video frame, in real Chromium.

Run (takes ~1 min on 2 cores):
    DJANGO_DEBUG=1 .venv/bin/python -m videochat.devstack --fresh exec -- \
        .venv/bin/python bench/call_join.py [--runs 7]

For each run, in a fresh room: alice is in the call; bob has the page open (socket
connected, camera preview running) and clicks Join at t0. We record, measured inside
the pages with performance.now() and getStats polled every 10 ms:
  - bob_first_frame: t0 -> bob decodes alice's first video frame
  - alice_first_frame: t0 -> alice decodes bob's first video frame
The reference, in the same browser and run: a bare RTCPeerConnection pair in one page
(no server, no signaling socket), from creating the pair to the first decoded frame.
The difference is what signaling through daphne + Redis costs.
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

BASE = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE))

CLICK_TO_FIRST_FRAME = """async () => {
  const t0 = performance.now();
  window.huddleCall.join();
  for (;;) {
    const stats = await window.huddleCall.stats();
    if (Object.values(stats).some((s) => s.framesDecoded > 0)) return performance.now() - t0;
    if (performance.now() - t0 > 20000) return JSON.stringify(window.huddleCall.trace);
    await new Promise((r) => setTimeout(r, 10));
  }
}"""

WAIT_FIRST_FRAME = """async (t0) => {
  for (;;) {
    const stats = await window.huddleCall.stats();
    if (Object.values(stats).some((s) => s.framesDecoded > 0)) return Date.now() - t0;
    if (Date.now() - t0 > 20000) return JSON.stringify(window.huddleCall.trace);
    await new Promise((r) => setTimeout(r, 10));
  }
}"""

LOOPBACK_PAIR = """async () => {
  const stream = await navigator.mediaDevices.getUserMedia(
    {video: {width: 640, height: 360}, audio: true});
  const t0 = performance.now();
  const a = new RTCPeerConnection(), b = new RTCPeerConnection();
  a.onicecandidate = (e) => e.candidate && b.addIceCandidate(e.candidate);
  b.onicecandidate = (e) => e.candidate && a.addIceCandidate(e.candidate);
  for (const t of stream.getTracks()) a.addTrack(t, stream);
  await a.setLocalDescription();
  await b.setRemoteDescription(a.localDescription);
  await b.setLocalDescription();
  await a.setRemoteDescription(b.localDescription);
  for (;;) {
    let frames = 0;
    (await b.getStats()).forEach((s) => {
      if (s.type === "inbound-rtp" && s.kind === "video") frames += s.framesDecoded || 0;
    });
    if (frames > 0) break;
    await new Promise((r) => setTimeout(r, 10));
  }
  const ms = performance.now() - t0;
  a.close(); b.close(); stream.getTracks().forEach((t) => t.stop());
  return ms;
}"""


def machine() -> dict:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    chromium = subprocess.run(
        ["/usr/bin/chromium", "--version"], capture_output=True, text=True
    ).stdout.strip()
    return {
        "nproc": os.cpu_count(),
        "python": platform.python_version(),
        "cpu": cpu,
        "chromium": chromium,
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    if not os.environ.get("REDIS_URL") or not os.environ.get("VIDEOCHAT_RUN_DIR"):
        raise SystemExit("run under: python -m videochat.devstack --fresh exec -- ...")
    from videochat.devstack import django_on_sqlite

    tmp = Path(tempfile.mkdtemp(prefix="bench-call-"))
    django_on_sqlite(tmp / "bench.sqlite3")

    from django.contrib.auth import get_user_model
    from playwright.sync_api import sync_playwright

    from rooms import services
    from tests.call_helpers import login_cookie
    from tests.fixtures.live import CHROMIUM, CHROMIUM_ARGS
    from videochat.devstack import Service, free_port

    users = get_user_model()
    alice = users.objects.create_user("bench-alice", password=None)
    bob = users.objects.create_user("bench-bob", password=None)
    port = free_port()
    env = {"DATABASE_URL": os.environ["DATABASE_URL"], "DJANGO_DEBUG": "1"}
    daphne = Service(
        "daphne",
        port,
        [
            str(Path(sys.executable).parent / "daphne"),
            "-b",
            "127.0.0.1",
            "-p",
            str(port),
            "videochat.asgi:application",
        ],
        tmp / "daphne.log",
        env=env,
    )
    os.chdir(BASE)
    daphne.start()
    base = f"http://127.0.0.1:{port}"
    results: dict[str, list[float]] = {
        "bob_first_frame": [],
        "alice_first_frame": [],
        "reference": [],
    }
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # ORM from this script while Playwright runs
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            ref_page = browser.new_page()
            ref_page.goto(f"{base}/healthz")  # a secure context for getUserMedia
            ref_page.evaluate(LOOPBACK_PAIR)  # warm-up, not recorded
            for run in range(args.runs + 1):
                room = services.room_create(
                    owner=alice,
                    name=f"Bench {run}",
                    slug=f"bench-{run}",
                    capacity=6,
                    guest_access=False,
                )
                services.membership_join(invite=room.invites.first(), user=bob)
                pages = []
                for user in (alice, bob):
                    ctx = browser.new_context()
                    ctx.add_cookies(
                        [{"name": "sessionid", "value": login_cookie(user), "url": base}]
                    )
                    page = ctx.new_page()
                    page.goto(f"{base}/r/{room.slug}/")
                    page.wait_for_selector("#connection-state[data-state=open]")
                    page.wait_for_selector("#join-call:not([disabled])")
                    pages.append(page)
                pa, pb = pages
                pa.click("#join-call")
                pa.wait_for_selector("#call-state")
                # Bob must know alice is in the call before he clicks (else the
                # client's simultaneous-entry fallback adds 1.5 s).
                while not pb.evaluate("window.huddle.presence.list().some(p => p.in_call)"):
                    pb.wait_for_timeout(10)
                t0 = pb.evaluate("Date.now()")
                alice_wait = None
                bob_ms = pb.evaluate(CLICK_TO_FIRST_FRAME)
                alice_wait = pa.evaluate(WAIT_FIRST_FRAME, t0)
                if isinstance(bob_ms, str) or isinstance(alice_wait, str):
                    raise SystemExit(
                        f"run {run}: no frames in 20 s; bob {bob_ms}; alice {alice_wait}"
                    )
                ref_ms = ref_page.evaluate(LOOPBACK_PAIR)
                if run > 0:  # run 0 warms up daphne, Redis and the browser
                    results["bob_first_frame"].append(bob_ms)
                    results["alice_first_frame"].append(float(alice_wait))
                    results["reference"].append(ref_ms)
                print(
                    f"run {run}: bob {bob_ms:.0f} ms, alice {alice_wait} ms, "
                    f"reference {ref_ms:.0f} ms{' (warm-up)' if run == 0 else ''}",
                    flush=True,
                )
                for page in pages:
                    page.context.close()
            browser.close()
    finally:
        daphne.stop()
    summary = {
        name: {
            "median_ms": round(statistics.median(v)),
            "min_ms": round(min(v)),
            "max_ms": round(max(v)),
            "runs": len(v),
        }
        for name, v in results.items()
    }
    print(json.dumps({"machine": machine(), "results": summary}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
