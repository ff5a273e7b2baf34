"""Production settings pass Django's deployment checks; repeated failed logins are throttled."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model

ROOT = Path(__file__).resolve().parent.parent


def test_production_settings_pass_check_deploy(tmp_path):
    env = {
        **os.environ,
        "DEBUG": "0",
        "SECRET_KEY": "x9!" + "k3Pq7vLm2Zr8Wt5Yb1Nc4Hd6Jf0Gs" * 2,
        "ALLOWED_HOSTS": "oms.example.com",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'deploy.sqlite3'}",
        "UNIWARE_VAR_DIR": str(tmp_path / "var"),
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_production_refuses_to_start_without_secret_key(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "SECRET_KEY"}
    env.update({"DEBUG": "0", "DATABASE_URL": f"sqlite:///{tmp_path / 'x.sqlite3'}"})
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


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
