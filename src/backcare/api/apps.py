from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "backcare.api"
    label = "api"
    verbose_name = "API"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from backcare.api import tokens
        from backcare.clinic.services.staff import staff_deactivated

        staff_deactivated.connect(tokens.revoke_all_of, dispatch_uid="api-revoke-tokens-of-leaver")
