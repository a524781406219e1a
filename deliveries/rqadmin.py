"""django-rq's dashboard behind a permission, like the dead letters.

django-rq lets any staff account in (``staff_member_required``): job
arguments and results, delete, clear a queue, requeue. Every one of its views,
at ``/admin/rq/`` and at the admin's own ``/admin/django_rq/dashboard/``, also
needs django-rq's permission ``django_rq.admin`` ("Access admin page"),
granted like any other (superusers have it), the way the dead-letter admin
needs ``deliveries.view_deadletter``.
"""

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern
from django_rq.admin import QueueAdmin
from django_rq.models import Dashboard
from django_rq.urls import get_admin_urlpatterns, get_api_urlpatterns

RQ_PERMISSION = "django_rq.admin"

View = Callable[..., HttpResponse]


def rq_view_gate(view: View) -> View:
    """Refuse signed-in accounts without the permission.

    Anonymous requests reach the view, which keeps its own door: the admin
    login for the pages, the bearer token for stats.json and metrics.
    """

    @wraps(view)
    def gated(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        user = request.user
        if user.is_authenticated and not user.has_perm(RQ_PERMISSION):
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return gated


def _gated(pattern: Any) -> Any:
    if not isinstance(pattern, URLPattern):
        return pattern
    return URLPattern(
        pattern.pattern, rq_view_gate(pattern.callback), pattern.default_args, pattern.name
    )


def rq_urlpatterns() -> tuple[list[Any], str]:
    """django_rq.urls with every view gated: ``include(rq_urlpatterns())``."""
    patterns = [
        *get_api_urlpatterns(),
        *get_admin_urlpatterns(view_wrapper=admin.site.admin_view),
    ]
    return [_gated(p) for p in patterns], "django_rq"


class RqDashboardAdmin(QueueAdmin):
    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(RQ_PERMISSION)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm(RQ_PERMISSION)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm(RQ_PERMISSION)

    def get_urls(self) -> list[Any]:
        return [_gated(p) for p in super().get_urls()]


def rq_admin_register(*, site: admin.AdminSite) -> None:
    """Swap django-rq's own dashboard admin (staff only) for the gated one."""
    if site.is_registered(Dashboard):
        site.unregister(Dashboard)
        site.register(Dashboard, RqDashboardAdmin)
