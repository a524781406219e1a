"""Sign up and log in (Django's, carrying invites: rooms/invites.py); log out and
password change are Django's own views.

Also the login lockout rule for django-axes (``axes_failure_limit``) and the
per-address limit on sign-ups.
"""

from typing import Any

from django import forms
from django.conf import settings
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import AuthenticationForm, UserCreationForm
from django.contrib.auth.models import User
from django.db.models import Sum
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme

from rooms import invites
from videochat.addresslimit import address_limit_hit, client_address
from videochat.errors import RateLimited
from videochat.text import validate_single_line


def axes_failure_limit(request: HttpRequest, credentials: dict | None) -> int:
    """The failure limit that applies to this login attempt (settings.AXES_FAILURE_LIMIT).

    Axes counts failures per (username, address) and per address alone
    (AXES_LOCKOUT_PARAMETERS) and locks once the larger count reaches one
    limit. One limit for both would lock a whole office behind one NAT after
    a few typos; so an account guessed at from one address locks at
    LOGIN_FAILURE_LIMIT, and an address trying many accounts (spraying)
    at LOGIN_FAILURE_LIMIT_PER_ADDRESS.
    """
    from axes.helpers import get_client_ip_address, get_client_username, get_cool_off
    from axes.models import AccessAttempt

    per_account = settings.LOGIN_FAILURE_LIMIT
    username = get_client_username(request, credentials)
    if username:
        attempts = AccessAttempt.objects.filter(
            username=username, ip_address=get_client_ip_address(request)
        )
        cool_off = get_cool_off(request)
        if cool_off is not None:
            attempts = attempts.filter(attempt_time__gte=timezone.now() - cool_off)
        failures = attempts.aggregate(n=Sum("failures_since_start"))["n"] or 0
        if failures >= per_account:
            return per_account
    return settings.LOGIN_FAILURE_LIMIT_PER_ADDRESS


class SignupForm(UserCreationForm):
    email = forms.EmailField(
        required=False, help_text="For notifications; optional.", validators=[validate_single_line]
    )

    class Meta(UserCreationForm.Meta):  # type: ignore[name-defined]  # django-stubs declares no Meta
        model = User
        fields = ("username", "email")


def safe_next(request: HttpRequest) -> str:
    """The request's ``next`` (POST, else GET) if it is a URL of this site, else ""."""
    next_url = request.POST.get("next") or request.GET.get("next") or ""
    if not url_has_allowed_host_and_scheme(
        next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return ""
    return next_url


class LoginView(auth_views.LoginView):
    """Django's log in; a ``next`` that is an invite link joins its room on success."""

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        invite = invites.invite_for_next(self.get_redirect_url())
        context["invite_room"] = invite.room if invite else None
        return context

    def form_valid(self, form: AuthenticationForm) -> HttpResponse:
        response = super().form_valid(form)
        invite = invites.invite_for_next(self.get_redirect_url())
        if invite is None:
            return response
        return invites.accept_for_user(self.request, invite=invite, user=form.get_user())


def signup(request: HttpRequest) -> HttpResponse:
    next_url = safe_next(request)
    if request.user.is_authenticated:
        return redirect(next_url or "home")
    form = SignupForm(request.POST or None)
    invite = invites.invite_for_next(next_url)
    context = {"form": form, "next": next_url, "invite_room": invite.room if invite else None}
    if request.method == "POST" and form.is_valid():
        try:
            # Counted per valid attempt: a script creating accounts in bulk.
            address_limit_hit(
                name="signup",
                address=client_address(request),
                limit=settings.SIGNUPS_PER_ADDRESS_PER_HOUR,
                window_s=3600,
            )
        except RateLimited as exc:
            form.add_error(None, exc.message)
            response = render(request, "registration/signup.html", context, status=429)
            response["Retry-After"] = str(int(exc.data["retry_after"]))
            return response
        user = form.save()
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        if invite is not None:
            return invites.accept_for_user(request, invite=invite, user=user)
        return redirect(next_url or "home")
    return render(request, "registration/signup.html", context)
