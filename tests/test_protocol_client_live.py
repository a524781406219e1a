"""docs/protocol.md's recipe for a client that is not a browser, followed step by
step against the real daphne with nothing but the standard library and websockets."""

import asyncio
import http.cookiejar
import re
import urllib.error
import urllib.parse
import urllib.request

import pytest

from tests.conftest import PASSWORD
from tests.fixtures import rawsocket

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def browserless(base: str):
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), NoRedirect())

    def cookie(name: str) -> str | None:
        return next((c.value for c in jar if c.name == name), None)

    def request(path: str, form: dict[str, str] | None = None) -> tuple[int, str]:
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        try:
            with opener.open(base + path, data=data, timeout=10) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode(errors="replace")

    return request, cookie


def follow_recipe(base: str, *, username: str | None, invite: str) -> str:
    """Steps 1-3 of the doc; returns the session cookie for step 4."""
    request, cookie = browserless(base)
    status, _ = request("/accounts/login/")
    assert status == 200 and cookie("csrftoken")
    token = cookie("csrftoken") or ""
    if username:
        status, _ = request(
            "/accounts/login/",
            {"username": username, "password": PASSWORD, "csrfmiddlewaretoken": token},
        )
        assert status == 302, status
        # A GET only asks (a link from another site must not join anyone); a POST joins.
        status, page = request(f"/i/{invite}/")
        assert status == 200 and "csrfmiddlewaretoken" in page, status
        token = cookie("csrftoken") or ""  # login rotated it
        status, _ = request(f"/i/{invite}/", {"csrfmiddlewaretoken": token})
        assert status == 302, status
    else:
        status, page = request(f"/i/{invite}/")
        assert status == 200 and re.search(r'name="display_name"', page)
        status, _ = request(
            f"/i/{invite}/", {"display_name": "bot guest", "csrfmiddlewaretoken": token}
        )
        assert status == 302, status
    return cookie("sessionid") or ""


async def test_a_script_logs_in_joins_by_invite_and_says_hello(live_url, room, outsider):
    invite = await room.invites.afirst()
    for username in ("oscar", None):  # an account, then a guest
        session = await asyncio.to_thread(
            follow_recipe, live_url, username=username, invite=invite.token
        )
        assert session
        ws = await rawsocket.connect(live_url, cookie=session)
        try:
            welcome = await rawsocket.hello(ws)
            expected = "participant" if username else "guest"
            assert welcome["member"]["role"] == expected, welcome["member"]
        finally:
            await ws.close()
