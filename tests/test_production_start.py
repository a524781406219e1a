"""Production mode starts as the README says: bin/up-production from a fresh database
and an empty static folder, with DJANGO_DEBUG=0, a real secret key and allowed hosts,
under real daphne; a page, its hashed static file and a room socket all work."""

import asyncio
import http.client
import json
import os
import re
import secrets
import signal
import sqlite3
import subprocess
from http.cookies import SimpleCookie
from urllib.parse import urlencode

import psutil
import pytest
import websockets

from rooms.protocol import PROTOCOL_VERSION
from videochat.devstack import BASE_DIR, free_port, wait_for_port

pytestmark = pytest.mark.live

PASSWORD = "prod-start-horse-9"


class Browser:
    """Just enough of a browser behind a TLS proxy: cookies (Secure ones too, as
    the proxy would carry them over https) and X-Forwarded-Proto: https."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.origin = f"https://127.0.0.1:{port}"
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, form: dict | None = None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        headers = {"X-Forwarded-Proto": "https"}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if form is not None:
            body = urlencode({**form, "csrfmiddlewaretoken": self.cookies["csrftoken"]})
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            headers["Origin"] = self.origin
            headers["Referer"] = self.origin + path
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        content = response.read()
        for value in response.headers.get_all("Set-Cookie") or []:
            for name, morsel in SimpleCookie(value).items():
                self.cookies[name] = morsel.value
        conn.close()
        return response, content


async def _socket_welcome(port: int, origin: str, session: str) -> dict:
    async with websockets.connect(
        f"ws://127.0.0.1:{port}/ws/rooms/prod-check/",
        origin=origin,  # type: ignore[arg-type]
        additional_headers={"Cookie": f"sessionid={session}", "X-Forwarded-Proto": "https"},
    ) as ws:
        await ws.send(json.dumps({"type": "hello", "v": PROTOCOL_VERSION}))
        return json.loads(await asyncio.wait_for(ws.recv(), 15))


def test_production_start_migrates_collects_static_and_serves_pages_and_sockets(tmp_path):
    port = free_port()
    db_path = tmp_path / "db.sqlite3"
    static_root = tmp_path / "static"
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_DEBUG", "DATABASE_URL")}
    env.update(
        # What an operator sets (README, Production); Redis and MongoDB are the
        # test's private servers, given by URL as a production deployment would.
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        DJANGO_ALLOWED_HOSTS="127.0.0.1",
        USE_X_FORWARDED_PROTO="1",
        WEB_PORT=str(port),
        DATABASE_URL=f"sqlite:///{db_path}",
        STATIC_ROOT=str(static_root),
        SKIP_BOOTSTRAP="1",
        PYTHONUNBUFFERED="1",
    )
    log_path = tmp_path / "up-production.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            ["bin/up-production"],
            cwd=BASE_DIR,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for_port(port, timeout=120, proc=proc)
        browser = Browser(port)
        response, page = browser.request("GET", "/accounts/signup/")
        assert response.status == 200, page[:2000]
        # The page links its static files by hashed name (the manifest
        # collectstatic wrote), and whitenoise serves them.
        assets = re.findall(rb'(?:href|src)="(/static/[^"]+\.[0-9a-f]{12}\.(?:css|js))"', page)
        assert assets, page[:2000]
        for asset in assets:
            static, _ = browser.request("GET", asset.decode())
            assert static.status == 200, asset
        assert (static_root / "staticfiles.json").exists()

        response, page = browser.request(
            "POST",
            "/accounts/signup/",
            {"username": "prodadmin", "password1": PASSWORD, "password2": PASSWORD},
        )
        assert response.status == 302, page[:2000]
        response, page = browser.request(
            "POST", "/rooms/new/", {"name": "Prod check", "slug": "prod-check", "capacity": "4"}
        )
        assert response.status == 302 and response.headers["Location"].endswith("/r/prod-check/"), (
            page[:2000]
        )
        response, page = browser.request("GET", "/r/prod-check/")
        assert response.status == 200 and b"Prod check" in page

        welcome = asyncio.run(_socket_welcome(port, browser.origin, browser.cookies["sessionid"]))
        assert welcome["type"] == "welcome", welcome

        # No demo account in production: the only user is the one signed up.
        with sqlite3.connect(db_path) as db:
            users = [row[0] for row in db.execute("SELECT username FROM auth_user")]
        assert users == ["prodadmin"]
        children = psutil.Process(proc.pid).children(recursive=True)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    output = log_path.read_text(errors="replace")
    assert f"daphne on http://127.0.0.1:{port}/" in output, output[-3000:]
    assert "demo" not in output.lower(), output[-3000:]
    _, alive = psutil.wait_procs(children, timeout=20)
    assert not alive, f"left behind: {[p.cmdline() for p in alive]}"
