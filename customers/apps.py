from django.apps import AppConfig


class CustomersConfig(AppConfig):
    name = "customers"
    verbose_name = "Customer lookups"

    def ready(self) -> None:
        # Django's documented place for start-up wiring: after every app and model is loaded.
        from customers import checks  # noqa: F401  (registers the system checks)
        from customers.services.decisions import AUDIT_UNAVAILABLE
        from dashboard.ops.database.middleware import register_paused_answer

        # The lookup pages' answer when nothing can be recorded, so nothing is fetched.
        register_paused_answer("customers", AUDIT_UNAVAILABLE)
