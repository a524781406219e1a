"""The room settings page (/r/<slug>/settings/): the owner's and moderators'
console outside the call. Its changes go through the same services as in the
call (moderation/services.py)."""

from datetime import datetime, timedelta
from typing import Any

import redis
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone

from rooms import keys, roles, selectors
from rooms.forms import RoomSettingsForm
from rooms.models import Room
from rooms.views import SignedInRequest
from videochat.errors import AppError

from . import services


def _kicked_until(room: Room) -> dict[int, datetime]:
    """Member id -> when their kick ends (the hold is a Redis key with a TTL)."""
    members = list(room.memberships.values_list("pk", "user_id", "joined_from"))
    pipe = keys.sync_client().pipeline(transaction=False)
    for pk, user_id, joined_from in members:
        for key in keys.kick_keys(
            room_id=room.pk, member_id=pk, guest_address=None if user_id else joined_from
        ):
            pipe.pttl(key)
    try:
        ttls = iter(pipe.execute())
    except redis.RedisError:
        return {}  # the page still shows roles and bans
    now = timezone.now()
    found: dict[int, datetime] = {}
    for pk, user_id, joined_from in members:
        count = 1 if user_id or not joined_from else 2
        left_ms = max(next(ttls) for _ in range(count))
        if left_ms > 0:
            found[pk] = now + timedelta(milliseconds=left_ms)
    return found


@login_required
def room_settings(request: SignedInRequest, slug: str) -> HttpResponse:
    """Name, guest access, lock, lobby, password, invite link and members: owner and moderators."""
    room = get_object_or_404(Room, slug=slug)
    membership = selectors.membership_for(room=room, user=request.user, session=None)
    if membership is None or not roles.moderates(membership.role):
        raise Http404("No such room")  # others learn nothing
    initial = {
        "name": room.name,
        "guest_access": room.guest_access,
        "locked": room.locked,
        "lobby_enabled": room.lobby_enabled,
    }
    form = RoomSettingsForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        access: dict[str, Any] = {
            k: data[k] for k in ("locked", "lobby_enabled") if data[k] != initial[k]
        }
        if data["password"]:
            access["password"] = data["password"]
        elif data["clear_password"] and room.password_hash:
            access["password"] = None
        try:
            with transaction.atomic():
                services.room_settings_update(
                    room_id=room.pk,
                    actor_member_id=membership.pk,
                    name=data["name"],
                    guest_access=data["guest_access"],
                )
                if access:
                    services.room_set_access(
                        room_id=room.pk, actor_member_id=membership.pk, **access
                    )
        except AppError as exc:
            field = exc.data.get("field")
            form.add_error(field if field in form.fields else None, exc.message)
        else:
            messages.success(request, "Settings saved.")
            return redirect("room_settings", slug=room.slug)
    invite = selectors.room_active_invite(room=room)
    return render(
        request,
        "rooms/settings.html",
        {
            "room": room,
            "membership": membership,
            "form": form,
            "password_set": bool(room.password_hash),
            "invite_url": request.build_absolute_uri(reverse("invite", args=[invite.token]))
            if invite
            else None,
            "members": selectors.room_members_with_status(
                room=room, kicked_until=_kicked_until(room)
            ),
        },
    )
