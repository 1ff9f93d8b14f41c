from django.apps import AppConfig


class CommonConfig(AppConfig):
    name = "backcare.common"
    label = "common"
    verbose_name = "Common"
    default_auto_field = "django.db.models.BigAutoField"
