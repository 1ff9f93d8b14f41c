from backcare.billing.views import urlpatterns

__all__ = ["urlpatterns"]
