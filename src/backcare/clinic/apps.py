from django.apps import AppConfig
from django.db.models.signals import post_migrate


class ClinicConfig(AppConfig):
    name = "backcare.clinic"
    label = "clinic"
    verbose_name = "Clinic"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from backcare.clinic import dbroles, signin
        from backcare.clinic.services.consent import invitation_still_open
        from backcare.clinic.services.staff import staff_invitation_still_open
        from backcare.common import outbox

        def still_open(message: object) -> str:
            return invitation_still_open(message) or staff_invitation_still_open(message)

        outbox.register_check("clinic", still_open)
        post_migrate.connect(dbroles.after_migrate, sender=self, dispatch_uid="backcare-grant-app-role")
        signin.connect()
