from django.apps import AppConfig


class ClinicConfig(AppConfig):
    name = "backcare.clinic"
    label = "clinic"
    verbose_name = "Clinic"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from backcare.clinic.services.consent import invitation_still_open
        from backcare.common import outbox

        outbox.register_check("clinic", invitation_still_open)
