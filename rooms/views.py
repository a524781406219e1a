from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from videochat.errors import Conflict, InviteInvalid

from . import selectors, services
from .admission import Banned
from .forms import GuestJoinForm, RoomForm
from .models import Role, Room


class SignedInRequest(HttpRequest):
    """What a ``login_required`` view receives (django-stubs' recommended pattern)."""

    user: User


@login_required
def home(request: SignedInRequest) -> HttpResponse:
    rooms = selectors.rooms_for_user(user=request.user)
    return render(request, "rooms/home.html", {"rooms": rooms})


@login_required
def room_create(request: SignedInRequest) -> HttpResponse:
    form = RoomForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            room = services.room_create(owner=request.user, **form.cleaned_data)
        except Conflict as exc:
            form.add_error("slug", exc.message)
        else:
            return redirect("room", slug=room.slug)
    return render(request, "rooms/create.html", {"form": form})


def room_detail(request: HttpRequest, slug: str) -> HttpResponse:
    room = get_object_or_404(Room, slug=slug)
    membership = selectors.membership_for(room=room, user=request.user, session=request.session)
    if membership is None:
        if not request.user.is_authenticated:
            return redirect(f"{reverse('login')}?next={request.path}")
        # Same answer as a missing room: a non-member learns nothing about it.
        raise Http404("No such room")
    invite = None
    if membership.role in (Role.OWNER, Role.MODERATOR):
        invite = selectors.room_active_invite(room=room)
    return render(
        request,
        "rooms/room.html",
        {
            "room": room,
            "membership": membership,
            "members": selectors.room_members(room=room),
            "invite_url": request.build_absolute_uri(reverse("invite", args=[invite.token]))
            if invite
            else None,
        },
    )


@login_required
@require_POST
def invite_rotate(request: SignedInRequest, slug: str) -> HttpResponse:
    room = get_object_or_404(Room, slug=slug)
    membership = selectors.membership_for(room=room, user=request.user, session=None)
    if membership is None or membership.role not in (Role.OWNER, Role.MODERATOR):
        raise Http404("No such room")
    for invite in room.invites.filter(revoked_at__isnull=True):
        services.invite_revoke(invite=invite)
    services.invite_create(room=room, created_by=request.user)
    messages.success(request, "The old invite link no longer works; share the new one.")
    return redirect("room", slug=room.slug)


def invite_accept(request: HttpRequest, token: str) -> HttpResponse:
    try:
        invite = services.invite_resolve(token=token)
    except InviteInvalid as exc:
        return render(request, "rooms/invite_invalid.html", {"error": exc.message}, status=404)
    room = invite.room
    if request.user.is_authenticated:
        try:
            services.membership_join(invite=invite, user=request.user)
        except Banned as exc:
            return render(request, "rooms/invite_invalid.html", {"error": exc.message}, status=403)
        return redirect("room", slug=room.slug)
    if selectors.membership_for(room=room, user=request.user, session=request.session):
        return redirect("room", slug=room.slug)
    form = GuestJoinForm(request.POST or None)
    if request.method == "POST" and room.guest_access and form.is_valid():
        try:
            membership = services.membership_join_as_guest(
                invite=invite,
                display_name=form.cleaned_data["display_name"],
                address=request.META.get("REMOTE_ADDR"),
            )
        except Banned as exc:
            return render(request, "rooms/invite_invalid.html", {"error": exc.message}, status=403)
        guests = dict(request.session.get(selectors.GUEST_SESSION_KEY, {}))
        guests[str(room.pk)] = membership.pk
        request.session[selectors.GUEST_SESSION_KEY] = guests
        return redirect("room", slug=room.slug)
    login_url = f"{reverse('login')}?next={request.path}"
    signup_url = f"{reverse('signup')}?next={request.path}"
    return render(
        request,
        "rooms/invite.html",
        {"room": room, "form": form, "login_url": login_url, "signup_url": signup_url},
    )
