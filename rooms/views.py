from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from videochat.addresslimit import address_limit_hit, client_address
from videochat.errors import AppError, InviteInvalid, RateLimited

from . import invites, roles, selectors, services
from .admission import Banned
from .forms import GuestJoinForm, JoinLinkForm, RoomForm
from .models import Invite, Room


class SignedInRequest(HttpRequest):
    """What a ``login_required`` view receives (django-stubs' recommended pattern)."""

    user: User


def home(request: HttpRequest) -> HttpResponse:
    """Your rooms; for a visitor who is not logged in, what Huddle is and how to get in."""
    if not isinstance(request.user, User):  # anonymous
        return render(request, "rooms/landing.html", {"join_form": JoinLinkForm()})
    rooms = selectors.rooms_for_user(user=request.user)
    moderated = selectors.rooms_moderated_by(user=request.user)
    return render(request, "rooms/home.html", {"rooms": rooms, "moderated": moderated})


def join_link(request: HttpRequest) -> HttpResponse:
    """``/join/?link=<invite URL or code>``: a pasted invite link leads to its invite page."""
    form = JoinLinkForm(request.GET if "link" in request.GET else None)
    if form.is_bound and form.is_valid():
        return redirect("invite", token=form.cleaned_data["link"])
    return render(request, "rooms/join.html", {"form": form})


@login_required
def room_create(request: SignedInRequest) -> HttpResponse:
    form = RoomForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            room = services.room_create(owner=request.user, **form.cleaned_data)
        except AppError as exc:  # the address taken meanwhile, a refused name, the cap
            field = exc.data.get("field")
            form.add_error(field if field in form.fields else None, exc.message)
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
    if roles.moderates(membership.role):
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
    if membership is None or not roles.moderates(membership.role):
        raise Http404("No such room")
    for invite in room.invites.filter(revoked_at__isnull=True):
        services.invite_revoke(invite=invite)
    services.invite_create(room=room, created_by=request.user)
    messages.success(request, "The old invite link no longer works; share the new one.")
    return redirect("room_settings", slug=room.slug)


def invite_accept(request: HttpRequest, token: str) -> HttpResponse:
    """An invite link: a confirmation page on GET, the join itself on POST.

    Never a join on GET: SameSite=Lax session cookies travel on top-level
    GETs from any site, so a link (or a redirect) elsewhere could make a
    logged-in user join a room they never chose. A POST needs our CSRF token.
    """
    try:
        invite = services.invite_resolve(token=token)
    except InviteInvalid as exc:
        return render(request, "rooms/invite_invalid.html", {"error": exc.message}, status=404)
    room = invite.room
    if request.user.is_authenticated:
        return _invite_accept_as_user(request, invite=invite)
    if selectors.membership_for(room=room, user=request.user, session=request.session):
        return redirect("room", slug=room.slug)
    form = GuestJoinForm(request.POST or None)
    status = 200
    if request.method == "POST" and room.guest_access and form.is_valid():
        try:
            # Per address: a script minting guests in bulk (each one a seat and a name).
            address_limit_hit(
                name="guest",
                address=client_address(request),
                limit=settings.GUESTS_PER_ADDRESS_PER_HOUR,
                window_s=3600,
            )
            membership = services.membership_join_as_guest(
                invite=invite,
                display_name=form.cleaned_data["display_name"],
                address=request.META.get("REMOTE_ADDR"),
            )
        except Banned as exc:
            return render(request, "rooms/invite_invalid.html", {"error": exc.message}, status=403)
        except AppError as exc:  # a name taken or refused, the invite's guest cap, the rate
            form.add_error("display_name", exc.message)
            status = 429 if isinstance(exc, RateLimited) else 200
        else:
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
        status=status,
    )


def _invite_accept_as_user(request: HttpRequest, *, invite: Invite) -> HttpResponse:
    room = invite.room
    user = request.user
    assert isinstance(user, User)  # authenticated: the caller checked
    existing = selectors.membership_for(room=room, user=user, session=None)
    # Read-only on GET: a banned account learns it before pressing anything.
    ban = selectors.ban_active_for(
        room_id=room.pk, user_id=user.pk, member_id=existing.pk if existing else 0
    )
    if ban is not None:
        return render(request, "rooms/invite_invalid.html", {"error": Banned.message}, status=403)
    if existing is not None or request.method == "POST":
        return invites.accept_for_user(request, invite=invite, user=user)
    return render(request, "rooms/invite_confirm.html", {"room": room})
