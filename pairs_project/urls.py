from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from dashboard import api

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.register("api/pairs", api.PairViewSet, basename="pair")

api_patterns = [
    path("api/health/", api.HealthApi.as_view(), name="api-health"),
    path("api/symbols/", api.SymbolListApi.as_view(), name="api-symbols"),
    path("api/ticks/", api.TickListApi.as_view(), name="api-ticks"),
    path("api/bars/", api.BarListApi.as_view(), name="api-bars"),
    path("api/alerts/", api.AlertListApi.as_view(), name="api-alerts"),
    path("api/positions/", api.PositionListApi.as_view(), name="api-positions"),
    path("api/screener/", api.ScreenerApi.as_view(), name="api-screener"),
    path("api/screener/runs/", api.ScreenerRunsApi.as_view(), name="api-screener-runs"),
    path("api/screener/runs/<int:run_id>/", api.ScreenerRunApi.as_view(), name="api-screener-run"),
    path("api/backtests/<int:backtest_id>/", api.BacktestApi.as_view(), name="api-backtest"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    *router.urls,
    path("", include("dashboard.urls")),
]

# The admin's lists need the width: a trader's columns fit a 1,440 px screen without the
# sidebar of every model (the index and the breadcrumbs lead to them).
admin.site.enable_nav_sidebar = False
admin.site.site_header = "pairs administration"
admin.site.site_title = "pairs admin"
admin.site.index_title = "Pairs, alerts, backtests and the feed"

urlpatterns = [
    path("admin/", admin.site.urls),
    *api_patterns,
]
