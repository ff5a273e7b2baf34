"""The recurrent tasks, defined in code and written to django-celery-beat by
`manage.py setup_periodic_tasks` (reproducible; intervals stay editable in the admin).

Each entry: name -> (task, every N seconds, queue). Later issues add the channel syncs here.
"""

PERIODIC_TASKS: dict[str, tuple[str, int, str]] = {
    "Re-allocate unfulfillable units": (
        "orders.tasks.reallocate_unfulfillable",
        15 * 60,
        "default",
    ),
}
