from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from deliveries.rqadmin import rq_urlpatterns
from moderation import views as moderation_views
from rooms import views as room_views

from . import accounts, health, metricsview

urlpatterns = [
    path("", room_views.home, name="home"),
    path("healthz", health.healthz, name="healthz"),
    path("metrics", metricsview.metrics, name="metrics"),
    path("accounts/signup/", accounts.signup, name="signup"),
    path("accounts/login/", accounts.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path(
        "accounts/password/",
        auth_views.PasswordChangeView.as_view(),
        name="password_change",
    ),
    path(
        "accounts/password/done/",
        auth_views.PasswordChangeDoneView.as_view(),
        name="password_change_done",
    ),
    path("join/", room_views.join_link, name="join"),
    path("rooms/new/", room_views.room_create, name="room_create"),
    path("r/<slug:slug>/", room_views.room_detail, name="room"),
    path("r/<slug:slug>/settings/", moderation_views.room_settings, name="room_settings"),
    path("r/<slug:slug>/invite/rotate/", room_views.invite_rotate, name="invite_rotate"),
    path("i/<str:token>/", room_views.invite_accept, name="invite"),
    path("", include("deliveries.urls")),
    path("", include("scaling.urls")),
    # Gated by django-rq's own permission, not just is_staff (deliveries/rqadmin.py).
    path("admin/rq/", include(rq_urlpatterns())),
    path("admin/", admin.site.urls),
]
