from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = "Channel notifications"

    def ready(self) -> None:
        """Connect the receivers that write notifications. Imported here, not at the top:
        they import the order models and services, which Django loads after this module."""
        from . import receivers

        receivers.connect()
