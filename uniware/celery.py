"""The Celery app. Tasks are thin wrappers around services (see each app's tasks.py)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "uniware.settings")

app = Celery("uniware")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
