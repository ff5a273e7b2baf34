"""Write the recurrent tasks of `uniware.core.schedule` to django-celery-beat.

Existing tasks keep the interval staff set in the admin unless --reset is given. Entries
expire after one interval so a stopped beat does not replay a backlog.
"""

from django.core.management.base import BaseCommand
from django.db import transaction
from django_celery_beat.models import IntervalSchedule, PeriodicTask, PeriodicTasks

from uniware.core.schedule import PERIODIC_TASKS


class Command(BaseCommand):
    help = "Create or update the recurrent tasks (django-celery-beat)."

    def add_arguments(self, parser):
        parser.add_argument("--reset", action="store_true", help="Restore the default intervals.")

    @transaction.atomic
    def handle(self, *args, reset: bool = False, **options):
        for name, (task, seconds, queue) in PERIODIC_TASKS.items():
            # Staff may have made duplicate schedules in the admin: reuse the first.
            interval = IntervalSchedule.objects.filter(
                every=seconds, period=IntervalSchedule.SECONDS
            ).order_by("pk").first() or IntervalSchedule.objects.create(
                every=seconds, period=IntervalSchedule.SECONDS
            )
            periodic, created = PeriodicTask.objects.get_or_create(
                name=name,
                defaults={
                    "task": task,
                    "interval": interval,
                    "queue": queue,
                    "expire_seconds": seconds,
                },
            )
            if reset and not created:
                periodic.interval = interval
                periodic.task, periodic.queue, periodic.expire_seconds = task, queue, seconds
                periodic.save()
            self.stdout.write(f"{'created' if created else 'kept'}: {name} ({periodic.interval})")
        PeriodicTasks.update_changed()
