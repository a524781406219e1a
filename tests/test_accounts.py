import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def test_signup_creates_account_and_logs_in(client):
    response = client.post(
        reverse("signup"),
        {"username": "nina", "email": "", "password1": PASSWORD, "password2": PASSWORD},
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("home")
    assert User.objects.filter(username="nina").exists()
    assert client.get(reverse("home")).status_code == 200


def test_signup_with_mismatched_passwords_shows_form_error(client):
    response = client.post(
        reverse("signup"),
        {"username": "nina", "password1": PASSWORD, "password2": PASSWORD + "x"},
    )
    assert response.status_code == 200
    assert "password2" in response.context["form"].errors
    assert not User.objects.filter(username="nina").exists()


def test_signup_duplicate_username_is_a_form_error(client, owner):
    response = client.post(
        reverse("signup"),
        {"username": owner.username, "password1": PASSWORD, "password2": PASSWORD},
    )
    assert response.status_code == 200
    assert "username" in response.context["form"].errors


def test_signup_ignores_offsite_next(client):
    response = client.post(
        reverse("signup") + "?next=https://evil.example/",
        {
            "username": "nina",
            "password1": PASSWORD,
            "password2": PASSWORD,
            "next": "https://evil.example/",
        },
    )
    assert response["Location"] == reverse("home")


def test_login_and_logout(client, owner):
    response = client.post(reverse("login"), {"username": "olivia", "password": PASSWORD})
    assert response.status_code == 302
    assert client.get(reverse("home")).context["user"] == owner
    client.post(reverse("logout"))
    assert client.get(reverse("home")).templates[0].name == "rooms/landing.html"


def test_wrong_password_is_a_form_error(client, owner):
    response = client.post(reverse("login"), {"username": "olivia", "password": "nope"})
    assert response.status_code == 200
    assert response.context["form"].non_field_errors()


def test_password_change(client, owner):
    client.force_login(owner)
    new = PASSWORD + "-new"
    response = client.post(
        reverse("password_change"),
        {"old_password": PASSWORD, "new_password1": new, "new_password2": new},
    )
    assert response.status_code == 302
    owner.refresh_from_db()
    assert owner.check_password(new)


def test_home_logged_out_is_the_landing_page(client):
    response = client.get(reverse("home"))
    assert response.status_code == 200
    assert response.templates[0].name == "rooms/landing.html"
