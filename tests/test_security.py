"""Production is the default and passes Django's deployment checks; repeated failed logins
are throttled per user and address and per address, behind a proxy too."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.test import RequestFactory

from uniware.core.throttle import client_ip

ROOT = Path(__file__).resolve().parent.parent
STRONG_KEY = "x9!" + "k3Pq7vLm2Zr8Wt5Yb1Nc4Hd6Jf0Gs" * 2
LOGIN = "/admin/login/?next=/admin/"


def empty_env(**variables: str) -> dict[str, str]:
    """No environment but what starting Python needs: nothing of this process leaks in
    (no DEBUG, no SECRET_KEY, no DJANGO_SETTINGS_MODULE=uniware.settings_test)."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/tmp", **variables}


def manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_an_empty_environment_is_production_and_refuses_to_start_without_secret_key():
    result = manage(empty_env(), "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode != 0
    assert "ImproperlyConfigured: SECRET_KEY must be set in the environment" in result.stderr
    assert "production is the default" in result.stderr


def test_secret_key_hosts_and_database_alone_pass_check_deploy(tmp_path):
    env = empty_env(
        SECRET_KEY=STRONG_KEY,
        ALLOWED_HOSTS="oms.example.com",
        DATABASE_URL=f"sqlite:///{tmp_path / 'deploy.sqlite3'}",
    )
    result = manage(env, "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize(
    "variables, message",
    [
        ({"SECRET_KEY": "dev-only-insecure-key-do-not-use-in-production"}, "SECRET_KEY must"),
        ({"SECRET_KEY": STRONG_KEY, "TRUSTED_PROXY_COUNT": "one"}, "TRUSTED_PROXY_COUNT must"),
        ({"SECRET_KEY": STRONG_KEY, "AXES_IP_FAILURE_LIMIT": "0"}, "AXES_IP_FAILURE_LIMIT must"),
        ({"SECRET_KEY": STRONG_KEY, "LOG_FORMAT": "xml"}, "LOG_FORMAT must be one of text, json"),
    ],
)
def test_bad_settings_are_refused_at_start_naming_the_variable(tmp_path, variables, message):
    env = empty_env(DATABASE_URL=f"sqlite:///{tmp_path / 'x.sqlite3'}", **variables)
    result = manage(env, "check")
    assert result.returncode != 0
    assert message in result.stderr


@pytest.mark.django_db
def test_repeated_failed_logins_lock_the_account_out(client, settings):
    get_user_model().objects.create_user("packer", password="right-password-1", is_staff=True)
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post("/admin/login/?next=/admin/", {"username": "packer", "password": "wrong"})
    response = client.post(
        "/admin/login/?next=/admin/", {"username": "packer", "password": "right-password-1"}
    )
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db
def test_a_correct_login_still_works_before_the_limit(client):
    get_user_model().objects.create_user("sales", password="right-password-1", is_staff=True)
    client.post("/admin/login/?next=/admin/", {"username": "sales", "password": "wrong"})
    response = client.post(
        "/admin/login/?next=/admin/", {"username": "sales", "password": "right-password-1"}
    )
    assert response.status_code == 302
    assert client.session["_auth_user_id"]


# --- Throttling behind a proxy, and against password spraying ------------------------------
BALANCER = "10.0.0.2"  # every request through the load balancer comes from here
PASSWORD = "right-password-1"


def login(client, username: str, password: str, remote: str, forwarded: str | None = None):
    """A fresh session's login POST as the given client (REMOTE_ADDR, X-Forwarded-For)."""
    client.cookies.clear()
    extra = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded
    return client.post(LOGIN, {"username": username, "password": password}, **extra)


@pytest.fixture
def packer(db):
    return get_user_model().objects.create_user("packer", password=PASSWORD, is_staff=True)


def test_behind_a_configured_proxy_clients_do_not_lock_each_other_out(client, settings, packer):
    settings.TRUSTED_PROXY_COUNT = 1
    attacker = "203.0.113.5"
    for n in range(settings.AXES_FAILURE_LIMIT):
        # whatever the attacker writes in the header comes before what the balancer appends
        assert login(client, "packer", "wrong", BALANCER, f"1.1.1.{n}, {attacker}").status_code
    assert login(client, "packer", PASSWORD, BALANCER, attacker).status_code == 429

    response = login(client, "packer", PASSWORD, BALANCER, "198.51.100.7")
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(packer.pk)


def test_without_a_configured_proxy_a_spoofed_forwarded_for_does_not_escape(
    client, settings, packer
):
    assert settings.TRUSTED_PROXY_COUNT == 0  # the default
    attacker = "203.0.113.5"
    for n in range(settings.AXES_FAILURE_LIMIT):
        login(client, "packer", "wrong", attacker, f"192.0.2.{n}")
    assert login(client, "packer", PASSWORD, attacker, "192.0.2.200").status_code == 429
    assert "_auth_user_id" not in client.session


def test_a_locked_out_user_still_logs_in_from_another_address(client, settings, packer):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        login(client, "packer", "wrong", "203.0.113.5")
    assert login(client, "packer", PASSWORD, "203.0.113.5").status_code == 429
    assert login(client, "packer", PASSWORD, "198.51.100.7").status_code == 302


def test_spraying_many_usernames_from_one_address_hits_the_per_address_limit(
    client, settings, packer
):
    settings.AXES_IP_FAILURE_LIMIT = 8
    sprayer = "203.0.113.9"
    for n in range(settings.AXES_IP_FAILURE_LIMIT - 1):  # one try per name: no user limit hit
        assert login(client, f"user{n}", "Summer2024!", sprayer).status_code == 200
    assert login(client, "user7", "Summer2024!", sprayer).status_code == 429  # the 8th failure
    assert login(client, "packer", PASSWORD, sprayer).status_code == 429
    assert login(client, "packer", PASSWORD, "198.51.100.7").status_code == 302


def test_a_valid_login_does_not_reset_the_address_count(client, settings, packer):
    """A sprayer who owns one account cannot log in with it to start counting again."""
    settings.AXES_IP_FAILURE_LIMIT = 6
    sprayer = "203.0.113.9"
    for n in range(5):
        login(client, f"user{n}", "Summer2024!", sprayer)
    assert login(client, "packer", PASSWORD, sprayer).status_code == 302
    login(client, "user5", "Summer2024!", sprayer)
    assert login(client, "user6", "Summer2024!", sprayer).status_code == 429


@pytest.mark.parametrize(
    "count, forwarded, expected",
    [
        (0, "198.51.100.7", "10.0.0.2"),  # not configured: the header is ignored
        (1, "6.6.6.6, 198.51.100.7", "198.51.100.7"),  # the balancer appended the last one
        (2, "6.6.6.6, 198.51.100.7, 10.0.0.9", "198.51.100.7"),  # two proxies
        (2, "198.51.100.7", "10.0.0.2"),  # fewer entries than proxies: not through them
        (1, "not-an-address", "10.0.0.2"),
        (1, "", "10.0.0.2"),
    ],
)
def test_client_ip_trusts_only_the_configured_proxies(settings, count, forwarded, expected):
    settings.TRUSTED_PROXY_COUNT = count
    request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR=forwarded)
    assert client_ip(request) == expected


def test_the_proxy_header_is_configurable(settings):
    settings.TRUSTED_PROXY_COUNT = 1
    settings.TRUSTED_PROXY_META_KEY = "HTTP_X_REAL_IP"
    request = RequestFactory().get(
        "/", REMOTE_ADDR="10.0.0.2", HTTP_X_REAL_IP="198.51.100.7", HTTP_X_FORWARDED_FOR="6.6.6.6"
    )
    assert client_ip(request) == "198.51.100.7"
