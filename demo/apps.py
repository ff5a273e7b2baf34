from django.apps import AppConfig


class DemoConfig(AppConfig):
    """The demo tenant loader (`manage.py load_demo`, run by `make demo`). It sits above every
    domain app, so none of them (nor `uniware.core`) imports what it needs to fill a tenant."""

    name = "demo"
    verbose_name = "Demo data"
