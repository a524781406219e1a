"""axe-core on the server pages (tests/a11y.py): no serious or critical WCAG 2.1 AA violation
on the landing, log-in, sign-up, join, invite, room list, room settings, webhooks, password
and pre-join pages, nor on the Django admin's log-in, index, changelist, change and add
pages. The call page's own check is in the call browser tests."""

import pytest
from playwright.sync_api import expect

from tests.a11y import assert_accessible
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.live]


def log_in(page, base, username):
    page.goto(f"{base}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("main button[type=submit]")
    expect(page.locator("h1")).to_have_text("Your rooms")


def test_pages_for_visitors_pass_axe(live_url, new_context, room, invite):
    page = new_context().new_page()
    for path, where in [
        ("/", "landing"),
        ("/accounts/login/", "log-in"),
        ("/accounts/signup/", "sign-up"),
        (f"/accounts/login/?next=/i/{invite.token}/", "log-in to join"),
        ("/join/?link=nonsense", "join (with an error)"),
        (f"/i/{invite.token}/", "invite"),
    ]:
        page.goto(live_url + path)
        assert_accessible(page, where)
    # A form with errors, as a visitor sees it after a bad sign-up.
    page.goto(f"{live_url}/accounts/signup/")
    page.fill("#id_username", "x")
    page.fill("#id_password1", PASSWORD)
    page.fill("#id_password2", PASSWORD + "-not-the-same")
    page.click("main button[type=submit]")
    expect(page.locator(".errors").first).to_be_visible()
    assert_accessible(page, "sign-up with errors")


def test_pages_for_members_pass_axe(live_url, new_context, room, owner, member, outsider):
    page = new_context().new_page()
    log_in(page, live_url, "olivia")
    assert_accessible(page, "room list")
    page.goto(f"{live_url}/r/{room.slug}/settings/")
    expect(page.locator("h1")).to_contain_text("Settings")
    assert_accessible(page, "room settings")
    for path, where in [
        ("/rooms/new/", "new room"),
        (f"/r/{room.slug}/webhooks/", "webhooks"),
        ("/accounts/password/", "password change"),
        ("/i/no-such-invite/", "invite not valid"),
    ]:
        page.goto(live_url + path)
        assert_accessible(page, where)
    other = new_context().new_page()
    log_in(other, live_url, "oscar")
    other.goto(f"{live_url}/i/{room.invites.first().token}/")
    expect(other.locator("#invite-join")).to_be_visible()
    assert_accessible(other, "join confirmation")
    page.goto(f"{live_url}/r/{room.slug}/")
    assert_accessible(page, "pre-join (lobby)")


def test_admin_pages_pass_axe(live_url, new_context, room, member, django_user_model):
    django_user_model.objects.create_superuser("ada", "ada@example.com", PASSWORD)
    page = new_context().new_page()
    page.goto(f"{live_url}/admin/login/")
    assert_accessible(page, "admin log-in")
    page.fill("#id_username", "ada")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    expect(page.locator("#site-name")).to_be_visible()
    assert_accessible(page, "admin index")
    for path, where in [
        ("/admin/rooms/room/", "admin room changelist"),
        (f"/admin/rooms/room/{room.pk}/change/", "admin room change"),
        ("/admin/rooms/membership/", "admin membership changelist"),
        (f"/admin/rooms/membership/{member.pk}/change/", "admin membership change"),
        ("/admin/rooms/ban/add/", "admin ban add"),
        ("/admin/rooms/auditlog/", "admin audit log"),
        ("/admin/messaging/message/", "admin message changelist"),
        ("/admin/deliveries/webhook/add/", "admin webhook add"),
        ("/admin/deliveries/deadletter/", "admin dead letters"),
        ("/admin/auth/user/", "admin user changelist"),
        (f"/admin/auth/user/{member.user.pk}/change/", "admin user change"),
    ]:
        page.goto(live_url + path)
        assert_accessible(page, where)
