from django.apps import AppConfig


class ClinicConfig(AppConfig):
    name = "backcare.clinic"
    label = "clinic"
    verbose_name = "Clinic"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from backcare.clinic import signin

        signin.connect()
