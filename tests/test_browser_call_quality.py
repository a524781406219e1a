"""The admin's call-quality page in real Chromium: reached from the room's admin page
by its "Call quality" link, plots visible, no serious axe violation; screenshot in
var/artifacts/admin-call-quality.png."""

from datetime import timedelta
from pathlib import Path

import pytest
from playwright.sync_api import expect

from rooms import telemetry
from tests.a11y import assert_accessible
from tests.conftest import PASSWORD
from tests.test_call_quality_admin import store

pytestmark = [pytest.mark.browser, pytest.mark.live]

ARTIFACTS = Path(__file__).resolve().parent.parent / "var" / "artifacts"


def test_staff_open_a_calls_quality_plots_from_the_room(
    live_url, new_context, room, django_user_model
):
    # The live server's MongoDB database is the default one: start this room clean.
    telemetry.collection().delete_many({"room": room.slug})
    start = telemetry.now() - timedelta(seconds=30)
    store("call-b", "alicepeer1", "bobpeer222", 12, start, events=["step:reduced:loss"])
    store("call-b", "bobpeer222", "alicepeer1", 12, start)
    django_user_model.objects.create_superuser("ada", "ada@example.com", PASSWORD)
    page = new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.goto(f"{live_url}/admin/login/")
    page.fill("#id_username", "ada")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.goto(f"{live_url}/admin/rooms/room/{room.pk}/change/")
    page.get_by_role("link", name="Call quality").click()
    expect(page.locator("h1")).to_have_text("Call quality: Standup")
    expect(page.locator("figure svg")).to_have_count(6)
    expect(page.get_by_role("img", name="Round-trip time, A–B")).to_be_visible()
    expect(page.locator("#quality-events")).to_contain_text("step:reduced:loss")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "admin-call-quality.png"), full_page=True)
    assert_accessible(page, "admin call quality")
