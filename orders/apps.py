from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "orders"
    verbose_name = "Orders and fulfilment"

    def ready(self) -> None:
        from . import receivers  # imports models and services: only once the apps are loaded

        receivers.connect()
