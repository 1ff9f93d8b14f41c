from django.apps import AppConfig


class SchedulingConfig(AppConfig):
    name = "backcare.scheduling"
    label = "scheduling"
    verbose_name = "Scheduling"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from backcare.clinic.selectors.client_record import client_record_sections
        from backcare.clinic.selectors.dashboard import dashboard_sections
        from backcare.clinic.signals import session_recorded
        from backcare.common import outbox
        from backcare.scheduling import client_record, held, notifications
        from backcare.scheduling.services import status

        outbox.register_check("scheduling", notifications.still_true)
        dashboard_sections.connect(held.dashboard_section, dispatch_uid="scheduling.held")
        client_record_sections.connect(client_record.client_section, dispatch_uid="scheduling.client_record")
        # A session note recorded for a client in treatment completes the appointment it was written for.
        session_recorded.connect(status.on_session_recorded, dispatch_uid="backcare-scheduling-session-note")
