"""Invite links on the way in: pasted links, and invites carried through log in and sign up.

An invite link is ``/i/<token>/``. Someone who follows it logged out is sent
to log in or sign up with ``next=/i/<token>/``; the log-in and sign-up pages
name the room ("Log in to join Standup"), and a successful log in or sign up
(a POST the person made, with our CSRF token) joins the room and lands in it.
A ``next`` that is not a safe local URL is ignored (Django's own check).
"""

import re
from urllib.parse import urlsplit

from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import Resolver404, resolve

from videochat.errors import InviteInvalid

from . import services
from .admission import Banned
from .models import Invite

# An invite URL's path, wherever it was copied from (any host, with or without
# the trailing slash, query or fragment).
_INVITE_PATH_RE = re.compile(r"/i/([A-Za-z0-9_-]{1,64})/?$")
_CODE_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")


def token_from_link(text: str) -> str | None:
    """The invite token in a pasted invite URL or bare code; None if it holds none."""
    text = text.strip()
    if _CODE_RE.fullmatch(text):
        return text
    path = urlsplit(text if "://" in text else f"//x/{text.lstrip('/')}").path
    found = _INVITE_PATH_RE.search(path)
    return found.group(1) if found else None


def invite_for_next(next_url: str) -> Invite | None:
    """The usable invite a (checked, safe) ``next`` URL points at, if it is an invite link."""
    if not next_url:
        return None
    try:
        match = resolve(urlsplit(next_url).path)
    except Resolver404:
        return None
    if match.url_name != "invite":
        return None
    try:
        return services.invite_resolve(token=match.kwargs["token"])
    except InviteInvalid:
        return None


def accept_for_user(request: HttpRequest, *, invite: Invite, user: User) -> HttpResponse:
    """Join ``user`` to the invite's room (a member already: just go in); a ban is a 403 page."""
    try:
        services.membership_join(invite=invite, user=user)
    except Banned as exc:
        return render(request, "rooms/invite_invalid.html", {"error": exc.message}, status=403)
    return redirect("room", slug=invite.room.slug)
