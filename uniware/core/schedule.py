"""The recurrent tasks, defined in code and written to django-celery-beat by
`manage.py setup_periodic_tasks` (reproducible; intervals stay editable in the admin).

Each entry: name -> (task, every N seconds, queue). The channel tasks queue one task per
channel; the status syncs refuse while the tenant is not live (seed 000).
"""

PERIODIC_TASKS: dict[str, tuple[str, int, str]] = {
    "Re-allocate unfulfillable units": (
        "orders.tasks.reallocate_unfulfillable",
        15 * 60,
        "default",
    ),
    "Pull orders from channels": ("channels.tasks.pull_orders", 10 * 60, "sync"),
    "Sync dispatched/cancelled status from channels": (
        "channels.tasks.sync_status",
        40 * 60,
        "sync",
    ),
    "Sync delivered/returned status from channels": (
        "channels.tasks.sync_deliveries",
        24 * 3600,
        "sync",
    ),
    "Sync returns from channels (last 30 days)": (
        "channels.tasks.sync_returns",
        24 * 3600,
        "sync",
    ),
    "Deliver channel notifications left behind": ("notifications.tasks.sweep", 30, "notifications"),
    # What survives a crash (README): work whose worker died is resumed or ended visibly.
    "Resume imports and exports whose worker died": ("imports.tasks.reap_jobs", 60, "imports"),
    "End sync runs whose worker died": ("channels.tasks.reap_runs", 60, "sync"),
    # Retention (IMPORTS_RETENTION_DAYS): uploads, reports and exports hold personal data.
    "Delete old import and export files": ("imports.tasks.expire_files", 3600, "imports"),
}
