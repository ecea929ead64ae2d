"""The Celery app (distributed mode); the embedded scheduler reads the same schedule."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pairs_project.settings")

app = Celery("pairs_project")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
