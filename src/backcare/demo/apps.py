from django.apps import AppConfig


class DemoConfig(AppConfig):
    name = "backcare.demo"
    label = "demo"
    verbose_name = "Demo data"
