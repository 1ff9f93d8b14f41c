from django.apps import AppConfig


class InteropConfig(AppConfig):
    name = "backcare.interop"
    label = "interop"
    verbose_name = "Interoperability"
