from django.apps import AppConfig


class InventoryConfig(AppConfig):
    name = "inventory"
    verbose_name = "Facilities and inventory"

    def ready(self) -> None:
        from .ledger import connect_signals

        connect_signals()
