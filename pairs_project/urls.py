from django.contrib import admin
from django.urls import path

from dashboard import api

api_patterns = [
    path("api/health/", api.HealthApi.as_view(), name="api-health"),
    path("api/symbols/", api.SymbolListApi.as_view(), name="api-symbols"),
    path("api/ticks/", api.TickListApi.as_view(), name="api-ticks"),
]

urlpatterns = [
    path("admin/", admin.site.urls),
    *api_patterns,
]
