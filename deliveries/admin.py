"""Admin: webhooks with their breaker state, and the MongoDB dead letters.

Dead letters are documents, not rows: DeadLetterAdmin replaces the changelist
and change views with pymongo-backed ones (list with filters, search, paging
and bulk replay/discard; open one; replay or discard it). Permissions come
from the table-less DeadLetter model: view to look, change to act.
"""

from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseRedirect,
)
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from pymongo.errors import PyMongoError

from . import breaker, deadletters, services
from .models import DeadLetter, Webhook
from .rqadmin import rq_admin_register
from .senders import SENDERS

PAGE_SIZE = 50
DATE_RANGES = {"1d": ("Last 24 hours", 1), "7d": ("Last 7 days", 7), "30d": ("Last 30 days", 30)}


@admin.register(Webhook)
class WebhookAdmin(admin.ModelAdmin):
    list_display = ("url", "room", "event_list", "active", "breaker_state", "created_at")
    list_filter = ("active", "created_at")
    search_fields = ("url", "room__slug", "room__name")
    raw_id_fields = ("room",)
    readonly_fields = ("secret", "breaker_state")
    actions = ["reset_breakers"]

    @admin.display(description="events")
    def event_list(self, obj: Webhook) -> str:
        return ", ".join(obj.events or [])

    @admin.display(description="breaker")
    def breaker_state(self, obj: Webhook) -> str:
        target = SENDERS["webhook"].breaker_target(target=obj.url, payload={})
        try:
            info = breaker.breaker_info(target=target)
        except Exception as exc:  # noqa: BLE001 - the page must render with Redis down
            return f"unknown ({type(exc).__name__})"
        text = f"{info['state']} ({info['failures']} failures, {info['trips']} trips)"
        if info["state"] == "open":
            text += f", {info['open_for_s']} s left"
        return text

    @admin.action(description="Reset the circuit breaker of the selected webhooks' hosts")
    def reset_breakers(self, request: HttpRequest, queryset) -> None:
        for hook in queryset:
            breaker.breaker_reset(
                target=SENDERS["webhook"].breaker_target(target=hook.url, payload={})
            )
        self.message_user(request, "Breakers reset.", messages.SUCCESS)


def _filters(request: HttpRequest) -> dict[str, str]:
    keys = ("kind", "status", "target", "date", "q")
    return {k: request.GET[k] for k in keys if request.GET.get(k)}


def _query(filters: dict[str, str]) -> dict[str, Any]:
    since = None
    if filters.get("date") in DATE_RANGES:
        since = timezone.now() - timedelta(days=DATE_RANGES[filters["date"]][1])
    return deadletters.deadletter_query(
        kind=filters.get("kind"),
        status=filters.get("status"),
        target=filters.get("target"),
        since=since,
        search=filters.get("q"),
    )


@admin.register(DeadLetter)
class DeadLetterAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_urls(self):
        prefix = f"{self.opts.app_label}_{self.opts.model_name}"
        wrap = self.admin_site.admin_view
        return [
            path("", wrap(self.changelist_view), name=f"{prefix}_changelist"),
            path("<str:delivery_id>/", wrap(self.detail_view), name=f"{prefix}_change"),
        ]

    def _context(self, request: HttpRequest, **extra: Any) -> dict[str, Any]:
        return {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "app_label": self.opts.app_label,
            "has_change_permission": self.has_change_permission(request),
            **extra,
        }

    def _act(self, request: HttpRequest, action: str, ids: list[str]) -> None:
        if not self.has_change_permission(request):
            raise PermissionDenied
        by = f"admin:{request.user.get_username()}"
        fn = {"replay": services.deadletter_replay, "discard": services.deadletter_discard}.get(
            action
        )
        if fn is None or not ids:
            self.message_user(request, "Choose an action and some dead letters.", messages.WARNING)
            return
        done = [i for i in ids if fn(delivery_id=i, by=by)]
        skipped = len(ids) - len(done)
        verb = "Replayed" if action == "replay" else "Discarded"
        text = f"{verb} {len(done)} dead letter(s)."
        if skipped:
            text += f" {skipped} skipped (no longer dead)."
        self.message_user(request, text, messages.SUCCESS if done else messages.WARNING)

    def changelist_view(self, request: HttpRequest, extra_context=None) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        filters = _filters(request)
        if request.method == "POST":
            self._act(request, request.POST.get("action", ""), request.POST.getlist("ids"))
            return HttpResponseRedirect(f"{request.path}?{urlencode(filters)}")
        try:
            page = int(request.GET.get("p", "1"))
        except ValueError:
            return HttpResponseBadRequest("The page number is not a number.")
        if page < 1:
            return HttpResponseBadRequest("There is no such page.")
        error = None
        docs: list[dict[str, Any]] = []
        total = 0
        targets: list[str] = []
        try:
            docs, total = deadletters.deadletter_list(
                query=_query(filters), offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE
            )
            targets = deadletters.deadletter_targets()
        except deadletters.PageOutOfRange:
            return HttpResponseBadRequest("There is no such page.")
        except PyMongoError as exc:
            error = f"MongoDB is unreachable: {exc}"[:300]
        pages = max(1, (total + PAGE_SIZE - 1) // PAGE_SIZE)
        context = self._context(
            request,
            title="Dead letters",
            rows=[{**d, "id": d["_id"]} for d in docs],
            total=total,
            page=page,
            pages=pages,
            prev_query=urlencode({**filters, "p": page - 1}) if page > 1 else None,
            next_query=urlencode({**filters, "p": page + 1}) if page < pages else None,
            filters=filters,
            filter_query=urlencode(filters),
            kinds=deadletters.KINDS,
            statuses=deadletters.STATUSES,
            targets=targets,
            date_ranges=[(k, v[0]) for k, v in DATE_RANGES.items()],
            error=error,
            spooled=_safe(deadletters.spool_length),
        )
        return TemplateResponse(request, "admin/deliveries/deadletter/change_list.html", context)

    def detail_view(self, request: HttpRequest, delivery_id: str) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        if request.method == "POST":
            self._act(request, request.POST.get("action", ""), [delivery_id])
            return HttpResponseRedirect(request.path)
        doc = deadletters.deadletter_get(delivery_id=delivery_id)
        if doc is None:
            raise Http404("No such dead letter")
        context = self._context(
            request,
            title=f"Dead letter {delivery_id}",
            doc=doc,
            payload=deadletters_pretty(doc.get("payload")),
            changelist_url=reverse("admin:deliveries_deadletter_changelist"),
        )
        return TemplateResponse(request, "admin/deliveries/deadletter/detail.html", context)


def _safe(fn):
    try:
        return fn()
    except Exception:  # noqa: BLE001 - informational only
        return None


def deadletters_pretty(value: Any) -> str:
    import json

    def default(v: Any) -> Any:
        return v.isoformat() if isinstance(v, datetime) else str(v)

    return json.dumps(value, indent=2, sort_keys=True, default=default)


# django_rq's admin module registered its dashboard first (INSTALLED_APPS order).
rq_admin_register(site=admin.site)
