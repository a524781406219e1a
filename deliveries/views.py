"""Webhook pages for room owners (linked from the room page)."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from rooms.models import Room

from . import selectors, services
from .forms import WebhookForm
from .models import Webhook
from .urlsafety import UnsafeURL


def _owned_room(request: HttpRequest, slug: str) -> Room:
    room = get_object_or_404(Room, slug=slug)
    if not selectors.is_room_owner(room=room, user=request.user):
        raise Http404("No such room")  # non-owners learn nothing
    return room


@login_required
def webhooks(request: HttpRequest, slug: str) -> HttpResponse:
    room = _owned_room(request, slug)
    form = WebhookForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.webhook_create(
                room=room,
                url=form.cleaned_data["url"],
                events=form.cleaned_data["events"],
                allow_private=settings.WEBHOOK_ALLOW_PRIVATE,
            )
        except UnsafeURL as exc:
            form.add_error("url", exc.message)
        else:
            messages.success(request, "Webhook added. Verify its signatures with the secret.")
            return redirect("webhooks", slug=room.slug)
    return render(
        request,
        "deliveries/webhooks.html",
        {"room": room, "form": form, "webhooks": selectors.room_webhooks(room=room)},
    )


@login_required
@require_POST
def webhook_change(request: HttpRequest, slug: str, webhook_id: int) -> HttpResponse:
    room = _owned_room(request, slug)
    hook = get_object_or_404(Webhook, pk=webhook_id, room=room)
    action = request.POST.get("action")
    if action == "delete":
        services.webhook_delete(webhook=hook)
        messages.success(request, "Webhook deleted.")
    elif action in ("pause", "resume"):
        services.webhook_set_active(webhook=hook, active=action == "resume")
        messages.success(request, "Webhook resumed." if action == "resume" else "Webhook paused.")
    return redirect("webhooks", slug=room.slug)
