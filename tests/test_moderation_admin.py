"""The Django admin for moderators: a staff group with only what it needs, live effects."""

from html.parser import HTMLParser

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import Group
from django.test import Client

from rooms.models import AuditLog, Ban, Membership, Role
from rooms.permissions import MODERATORS_GROUP
from tests.conftest import make_user
from tests.fixtures.sockets import joined, receive_until

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def staff_moderator(django_user_model):
    user = make_user(django_user_model, "sam", is_staff=True)
    user.groups.add(Group.objects.get(name=MODERATORS_GROUP))
    return user


def admin_client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_moderators_group_has_only_moderation_permissions():
    group = Group.objects.get(name=MODERATORS_GROUP)
    perms = set(group.permissions.values_list("content_type__app_label", "codename"))
    assert perms == {
        ("rooms", "view_room"),
        ("rooms", "change_room"),
        ("rooms", "view_membership"),
        ("rooms", "change_membership"),
        ("rooms", "view_invite"),
        ("rooms", "change_invite"),
        ("rooms", "view_ban"),
        ("rooms", "add_ban"),
        ("rooms", "change_ban"),
        ("rooms", "view_auditlog"),
        ("messaging", "view_message"),
        ("messaging", "change_message"),
    }


def test_staff_moderator_sees_moderation_pages_with_filters_and_search_but_nothing_else(
    staff_moderator, room, member
):
    AuditLog.objects.create(
        room=room, room_slug=room.slug, actor_name="olivia", action="kick", target_name="marco"
    )
    client = admin_client(staff_moderator)
    for url in (
        "/admin/rooms/room/?q=stand&locked__exact=0",
        "/admin/rooms/membership/?q=marco&role__exact=participant",
        "/admin/rooms/invite/?q=standup",
        "/admin/rooms/ban/?q=spam&lifted_at__isempty=1",
        "/admin/rooms/auditlog/?q=marco&action__exact=kick",
        "/admin/messaging/message/?q=hello",
        "/admin/rooms/ban/add/",
    ):
        assert client.get(url).status_code == 200, url
    assert b"marco" in client.get("/admin/rooms/auditlog/?q=marco").content
    # Not the accounts, not deleting rooms, not writing the audit log.
    assert client.get("/admin/auth/user/").status_code == 403
    assert client.get(f"/admin/rooms/room/{room.pk}/delete/").status_code == 403
    assert client.get("/admin/rooms/auditlog/add/").status_code == 403
    log = AuditLog.objects.get()
    assert client.post(f"/admin/rooms/auditlog/{log.pk}/change/", {}).status_code == 403


async def test_a_ban_saved_in_the_admin_closes_the_members_socket_and_is_audited(
    staff_moderator, member, room
):
    client = await sync_to_async(admin_client)(staff_moderator)
    async with joined(member.user) as (comm, _):
        response = await sync_to_async(client.post)(
            "/admin/rooms/ban/add/",
            {
                "room": room.pk,
                "user": member.user_id,
                "membership": "",
                "display_name": "",
                "reason": "spam links",
                "until_0": "",
                "until_1": "",
            },
        )
        assert response.status_code == 302, response.content[:2000]
        banned = await receive_until(comm, "mod.banned")
        assert banned["reason"] == "spam links" and banned["by"] == "sam"
        closed = await comm.receive_output(timeout=5)
        assert (closed["type"], closed["code"]) == ("websocket.close", 4003)
    ban = await Ban.objects.aget()
    assert ban.banned_by_id == staff_moderator.pk and ban.display_name == "marco"
    log = await AuditLog.objects.aget()
    assert (log.action, log.actor_name, log.detail["via"]) == ("ban", "sam", "admin")

    # Lifting it in the admin lets them back.
    response = await sync_to_async(client.post)(
        "/admin/rooms/ban/", {"action": "lift_bans", "_selected_action": [ban.pk]}
    )
    assert response.status_code == 302
    async with joined(member.user) as (_, welcome):
        assert welcome["member"]["id"] == member.pk


async def test_a_role_changed_in_the_admin_takes_effect_on_the_open_socket(
    staff_moderator, member, room
):
    client = await sync_to_async(admin_client)(staff_moderator)
    async with joined(member.user) as (comm, _):
        response = await sync_to_async(client.post)(
            f"/admin/rooms/membership/{member.pk}/change/",
            {
                "room": room.pk,
                "user": member.user_id,
                "display_name": "marco",
                "role": Role.MODERATOR,
                "joined_at_0": member.joined_at.strftime("%Y-%m-%d"),
                "joined_at_1": member.joined_at.strftime("%H:%M:%S"),
            },
        )
        assert response.status_code == 302, response.content[:2000]
        assert (await receive_until(comm, "member.you"))["role"] == "moderator"
        await comm.send_json_to({"type": "mod.lock", "locked": True})
        assert (await receive_until(comm, "room.access"))["locked"] is True
    assert (await Membership.objects.aget(pk=member.pk)).role == Role.MODERATOR
    assert await AuditLog.objects.filter(action="role").acount() == 1


def test_staff_moderators_cannot_make_owners_or_take_rooms(staff_moderator, room, member):
    client = admin_client(staff_moderator)
    page = client.get(f"/admin/rooms/membership/{member.pk}/change/").content.decode()
    assert 'value="moderator"' in page and 'value="owner"' not in page
    response = client.post(
        f"/admin/rooms/membership/{member.pk}/change/",
        {
            "room": room.pk,
            "user": member.user_id,
            "display_name": "marco",
            "role": Role.OWNER,
            "joined_at_0": member.joined_at.strftime("%Y-%m-%d"),
            "joined_at_1": member.joined_at.strftime("%H:%M:%S"),
        },
    )
    assert response.status_code == 200  # the form refuses the choice
    member.refresh_from_db()
    assert member.role == Role.PARTICIPANT
    owner_member = Membership.objects.get(room=room, role=Role.OWNER)
    assert client.post(f"/admin/rooms/membership/{owner_member.pk}/change/", {}).status_code == 403
    room_page = client.get(f"/admin/rooms/room/{room.pk}/change/").content.decode()
    assert 'name="owner"' not in room_page


async def test_locking_a_room_in_the_admin_is_audited_and_seen_live(staff_moderator, owner, room):
    from types import SimpleNamespace

    from django.contrib import admin as django_admin
    from django.test import RequestFactory

    from moderation.admin import RoomAdmin
    from rooms.models import Room

    @sync_to_async
    def lock_in_admin():
        request = RequestFactory().post("/admin/rooms/room/")
        request.user = staff_moderator
        obj = Room.objects.get(pk=room.pk)
        obj.locked = True
        form = SimpleNamespace(changed_data=["locked"])
        RoomAdmin(Room, django_admin.site).save_model(request, obj, form, change=True)

    async with joined(owner) as (comm, _):
        await lock_in_admin()
        access = await receive_until(comm, "room.access")
        assert access["locked"] is True and access["by"] == "sam"
    log = await AuditLog.objects.aget()
    assert (log.action, log.detail) == ("lock", {"via": "admin"})


class _FormFields(HTMLParser):
    """The values a browser would post from the admin change form (no JavaScript)."""

    def __init__(self) -> None:
        super().__init__()
        self.data: dict[str, str] = {}
        self._select: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        name = a.get("name")
        if tag == "input" and name and a.get("type") not in ("submit", "button"):
            if a.get("type") == "checkbox":
                if "checked" in a:
                    self.data[name] = a.get("value") or "on"
            else:
                self.data[name] = a.get("value") or ""
        elif tag == "select" and name:
            self._select = name
        elif tag == "option" and self._select:
            if "selected" in a or self._select not in self.data:
                self.data[self._select] = a.get("value") or ""
        elif tag == "textarea" and name:
            self._textarea = name
            self.data[name] = ""

    def handle_endtag(self, tag):
        if tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None

    def handle_data(self, data):
        if self._textarea:
            self.data[self._textarea] += data


async def test_a_role_changed_in_the_rooms_members_inline_goes_through_the_service(
    django_user_model, member, room
):
    boss = await sync_to_async(make_user)(django_user_model, "boss", is_staff=True)
    boss.is_superuser = True
    await boss.asave()
    client = await sync_to_async(admin_client)(boss)
    url = f"/admin/rooms/room/{room.pk}/change/"
    page = await sync_to_async(client.get)(url)
    form = _FormFields()
    form.feed(page.content.decode())
    data = {k: v for k, v in form.data.items() if "__prefix__" not in k}
    row = next(
        k[: -len("-id")] for k, v in data.items() if k.endswith("-id") and v == str(member.pk)
    )
    assert data[f"{row}-role"] == Role.PARTICIPANT
    data[f"{row}-role"] = Role.MODERATOR
    async with joined(member.user) as (comm, _):
        response = await sync_to_async(client.post)(url, data)
        assert response.status_code == 302, response.content[:3000]
        assert (await receive_until(comm, "member.you"))["role"] == "moderator"
    assert (await Membership.objects.aget(pk=member.pk)).role == Role.MODERATOR
    log = await AuditLog.objects.aget(action="role")
    assert log.detail == {"from": "participant", "to": "moderator", "via": "admin"}
