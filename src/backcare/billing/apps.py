from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "backcare.billing"
    label = "billing"
    verbose_name = "Billing"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from backcare.billing import panels, receivers  # noqa: F401  (receivers connect to the signals)

        panels.register()
