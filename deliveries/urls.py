from django.urls import path

from . import views

urlpatterns = [
    path("r/<slug:slug>/webhooks/", views.webhooks, name="webhooks"),
    path(
        "r/<slug:slug>/webhooks/<int:webhook_id>/",
        views.webhook_change,
        name="webhook_change",
    ),
]
