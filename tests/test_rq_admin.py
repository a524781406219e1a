"""django-rq's dashboard needs its permission, not just a staff account."""

import pytest
from django.contrib.auth.models import Permission

pytestmark = pytest.mark.django_db

PAGES = (
    "/admin/rq/",
    "/admin/rq/queues/0/",
    "/admin/rq/queues/0/finished/",
    "/admin/rq/queues/0/failed/",
    "/admin/rq/workers/0/",
    "/admin/rq/stats.json",
    "/admin/django_rq/dashboard/",
)


def _queue():
    import django_rq
    from rq import Queue

    # Plain rq: django-rq's own queue defers enqueueing to the test's transaction commit.
    return Queue("default", connection=django_rq.get_connection("default"))


def _queued_job_ids() -> list[str]:
    return _queue().job_ids


def test_plain_staff_is_refused_the_rq_dashboard_and_cannot_clear_a_queue(
    client, django_user_model
):
    job = _queue().enqueue("deliveries.jobs.delivery_health")
    staff = django_user_model.objects.create_user("sam", "sam@example.com", "x", is_staff=True)
    client.force_login(staff)
    for url in PAGES:
        assert client.get(url).status_code == 403, url
    assert client.post("/admin/rq/queues/0/empty/", {"post": "yes"}).status_code == 403
    assert client.post(f"/admin/rq/queues/0/{job.id}/delete/", {"post": "yes"}).status_code == 403
    assert _queued_job_ids() == [job.id]
    assert "Django-RQ" not in client.get("/admin/").content.decode()


def test_staff_with_the_rq_permission_gets_the_dashboard(client, django_user_model):
    job = _queue().enqueue("deliveries.jobs.delivery_health")
    staff = django_user_model.objects.create_user("ops", "ops@example.com", "x", is_staff=True)
    staff.user_permissions.add(
        Permission.objects.get(content_type__app_label="django_rq", codename="admin")
    )
    client.force_login(staff)
    for url in PAGES:
        assert client.get(url).status_code == 200, url
    assert job.id in client.get("/admin/rq/queues/0/").content.decode()
    assert client.post("/admin/rq/queues/0/empty/", {"post": "yes"}).status_code == 302
    assert _queued_job_ids() == []


def test_anonymous_visitors_are_sent_to_the_admin_login(client):
    response = client.get("/admin/rq/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
