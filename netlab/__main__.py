"""``bin/lab``: the network lab from the command line (docs/lab.md).

    bin/lab [--profile NAME[,NAME]] [--all] [--short] [--mode off|reactive|predictive|all]
            [--out DIR] [--peers 2] [--keep-open]

Runs inside ``python -m videochat.devstack --fresh exec`` (bin/lab does it), which
gives private Redis and MongoDB-protocol servers; the lab adds a fresh SQLite
database in the output folder, coturn, one impairment relay and one daphne per
seat, and headless Chromium peers. For each profile and mode it plays the profile
in a call and writes a run folder ``<out>/<profile>--<mode>/``; at the end
``<out>/report.html`` sums them all up.
"""

from __future__ import annotations

import argparse
import os
import platform
import secrets
import shlex
import sys
import time
from pathlib import Path

BASE = Path(__file__).resolve().parent.parent


def parse(argv: list[str] | None) -> argparse.Namespace:
    from netlab.profiles import FULL, PROFILES

    parser = argparse.ArgumentParser(prog="bin/lab", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--profile", default="", help=f"comma-separated; known: {', '.join(PROFILES)}"
    )
    parser.add_argument("--all", action="store_true", help=f"every profile: {', '.join(FULL)}")
    parser.add_argument("--short", action="store_true", help="the <= 30 s variants")
    parser.add_argument(
        "--mode", default="reactive", choices=["off", "reactive", "predictive", "all"]
    )
    parser.add_argument("--out", type=Path, default=None, help="default var/lab/<UTC time>")
    parser.add_argument(
        "--camera",
        choices=["clip", "fake"],
        default="clip",
        help="clip: a busy ~1 Mbit/s video (netlab/media.py; default); fake: Chromium's "
        "own fake camera (~200 kbit/s)",
    )
    parser.add_argument("--peers", type=int, default=2, help="headless peers (2 or 3)")
    parser.add_argument(
        "--keep-open",
        action="store_true",
        help="a seat for your own browser (its own relay, playing peer 0's phases); "
        "the lab prints a link and login and stays up after the profiles until Ctrl-C",
    )
    parser.add_argument(
        "--report",
        type=Path,
        default=None,
        metavar="DIR",
        help="only rebuild DIR/report.html from the run folders under DIR (any depth)",
    )
    args = parser.parse_args(argv)
    if args.report:
        return args
    names = list(FULL) if args.all else [n for n in args.profile.split(",") if n]
    if not names:
        parser.error("give --profile NAME[,NAME] or --all")
    if args.short:
        names = [n if n.endswith("-short") else f"{n}-short" for n in names]
    unknown = [n for n in names if n not in PROFILES]
    if unknown:
        parser.error(f"unknown profile(s) {', '.join(unknown)}; known: {', '.join(PROFILES)}")
    if not 2 <= args.peers <= 3:
        parser.error("--peers must be 2 or 3 (4 browsers saturate 2 cores)")
    args.names = names
    args.modes = ["off", "reactive", "predictive"] if args.mode == "all" else [args.mode]
    return args


def machine() -> str:
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.report:
        from netlab import report

        folders = sorted(p.parent for p in args.report.rglob("run.json"))
        if not folders:
            raise SystemExit(f"no run folders (run.json) under {args.report}")
        print(report.write_index(args.report, folders, command=f"bin/lab --report {args.report}"))
        return 0
    if not os.environ.get("REDIS_URL") or not os.environ.get("VIDEOCHAT_RUN_DIR"):
        raise SystemExit("run through bin/lab (python -m videochat.devstack --fresh exec -- ...)")
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    out = (args.out or BASE / "var" / "lab" / stamp).resolve()
    out.mkdir(parents=True, exist_ok=True)
    from videochat.devstack import django_on_sqlite

    django_on_sqlite(out / "lab.sqlite3")
    from django.contrib.auth import get_user_model
    from django.test import Client
    from playwright.sync_api import sync_playwright

    from netlab import lab, report
    from netlab.media import camera_args
    from netlab.profiles import get
    from rooms import services
    from videochat.devstack import CHROMIUM, CHROMIUM_ARGS

    users = get_user_model()
    runs = [(get(n), m) for n in args.names for m in args.modes]
    # Every account and cookie before the browser starts (Playwright's loop and the ORM
    # do not mix in one thread): fresh accounts per run, so a run never resumes the last.
    owner = users.objects.create_user("lab-owner", password=None)
    room = services.room_create(
        owner=owner, name="Network lab", slug=lab.ROOM_SLUG, capacity=6, guest_access=False
    )
    invite = room.invites.get()

    def cookie_for(username: str, password: str | None = None) -> str:
        user = users.objects.create_user(username, password=password)
        services.membership_join(invite=invite, user=user)
        client = Client()
        client.force_login(user)
        return client.cookies["sessionid"].value

    cookies = [
        {f"peer{i}": cookie_for(f"peer{i}-run{k}") for i in range(args.peers)}
        for k in range(len(runs))
    ]
    human_password = secrets.token_urlsafe(9)
    if args.keep_open:
        cookie_for("you", human_password)

    env = {
        "DATABASE_URL": os.environ["DATABASE_URL"],
        "DJANGO_DEBUG": "1",
        "PYTHONUNBUFFERED": "1",
    }
    stack = lab.LabStack(out / "services", env, seats=args.peers, human=args.keep_open)
    print(f"lab: starting coturn, {args.peers + args.keep_open} relays and daphnes in {out}")
    stack.start()
    command = "bin/lab " + shlex.join(argv if argv is not None else sys.argv[1:])
    folders = []
    try:
        if args.keep_open:
            you = stack.seat_list[-1]
            print(
                "\nlab: join from a browser ON THIS MACHINE (the relay and coturn listen on "
                f"127.0.0.1):\n  {you.base}/accounts/login/?next=/r/{lab.ROOM_SLUG}/\n"
                f"  user: you   password: {human_password}\n"
                f"  your path: relay 127.0.0.1:{you.relay.port} -> coturn, playing peer 0's "
                "phases\n",
                flush=True,
            )
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, *camera_args(args.camera)]
            )
            for k, (profile, mode) in enumerate(runs):
                print(f"lab: {profile.name} [{mode}], {profile.seconds:.0f} s", flush=True)
                record = lab.play(
                    stack,
                    browser,
                    profile=profile,
                    mode=mode,
                    cookies=cookies[k],
                    on_phase=lambda text: print(f"lab:   {text}", flush=True),
                )
                stored = lab.stored_samples(lab.ROOM_SLUG, record.started_ms, record.ended_ms)
                if stored:
                    record.samples_source = "call_stats"
                    own = record.samples
                    record.samples = stored
                else:
                    own = []
                folder = out / f"{profile.name}--{mode}"
                lab.write_run(
                    record,
                    folder,
                    extra={
                        "machine": machine(),
                        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                        "command": command,
                        "room": lab.ROOM_SLUG,
                        "profile_summary": profile.summary,
                        "camera": args.camera,
                    },
                )
                if own:
                    lab.write_jsonl(folder / "lab-samples.jsonl", own)
                folders.append(folder)
                report.write_run_report(folder)
                print(f"lab:   wrote {folder}", flush=True)
            browser.close()
        path = report.write_index(out, folders, command=command)
        print(f"lab: report {path}", flush=True)
        if args.keep_open:
            print("lab: still up for your browser; Ctrl-C stops", flush=True)
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                pass
    finally:
        stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
