from django.apps import AppConfig


class CustomersConfig(AppConfig):
    name = "customers"
    verbose_name = "Customer lookups"

    def ready(self) -> None:
        from customers import checks  # noqa: F401  (registers the system checks)
