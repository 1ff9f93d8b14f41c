from django.apps import AppConfig


class SchedulingConfig(AppConfig):
    name = "backcare.scheduling"
    label = "scheduling"
    verbose_name = "Scheduling"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from backcare.clinic.selectors.dashboard import dashboard_sections
        from backcare.common import outbox
        from backcare.scheduling import held, notifications

        outbox.register_check("scheduling", notifications.still_true)
        dashboard_sections.connect(held.dashboard_section, dispatch_uid="scheduling.held")
