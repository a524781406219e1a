"""Mounted from the project's URLs with ``path("", include("scaling.urls"))``."""

from django.urls import path

from . import views

urlpatterns = [
    path("metrics/scaling", views.metrics, name="metrics_scaling"),
]
