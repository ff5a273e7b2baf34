"""Write the recurrent tasks of `uniware.core.schedule` to django-celery-beat.

Existing tasks keep the interval staff set in the admin unless --reset is given. Entries
expire after one interval so a stopped beat does not replay a backlog.
"""

from django.core.management.base import BaseCommand
from django.db import transaction
from django_celery_beat.models import IntervalSchedule, PeriodicTask, PeriodicTasks

from uniware.core.schedule import PERIODIC_TASKS

# The inventory push to channels (issue 16, `listings.tasks`): each queues one task per
# channel that takes inventory; all three share the channel's lease, so they never overlap.
INVENTORY_PUSH_TASKS: dict[str, tuple[str, int, str]] = {
    "Push changed inventory to channels": ("listings.tasks.push_inventory", 10 * 60, "sync"),
    "Push out-of-stock listings to channels (fast path)": (
        "listings.tasks.push_inventory_zero",
        2 * 60,
        "sync",
    ),
    "Push all inventory to channels (full)": (
        "listings.tasks.push_inventory_full",
        24 * 3600,
        "sync",
    ),
}


class Command(BaseCommand):
    help = "Create or update the recurrent tasks (django-celery-beat)."

    def add_arguments(self, parser):
        parser.add_argument("--reset", action="store_true", help="Restore the default intervals.")

    @transaction.atomic
    def handle(self, *args, reset: bool = False, **options):
        for name, (task, seconds, queue) in {**PERIODIC_TASKS, **INVENTORY_PUSH_TASKS}.items():
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
