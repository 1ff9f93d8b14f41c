from django.contrib import admin
from django.urls import include, path

admin.site.site_header = "Backcare administration"

# Uploaded files (clearance letters) are clinical records: they are never served as static media, only through
# views that check permissions and record the access.
urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("backcare.api.urls")),
    path("", include("backcare.interop.urls")),
    path("", include("backcare.billing.urls")),
    path("", include("backcare.scheduling.urls")),
    path("", include("backcare.clinic.urls")),
    path("", include("backcare.datarights.urls")),
    path("", include("backcare.scheduling.feeds")),
]
