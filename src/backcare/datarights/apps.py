from django.apps import AppConfig


class DatarightsConfig(AppConfig):
    """No models of its own: the erasure requests stay in clinic (`clinic.ErasureRequest`) beside the client."""

    name = "backcare.datarights"
    label = "datarights"
    verbose_name = "Data rights"
