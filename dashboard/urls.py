"""Server-rendered pages and their CSV downloads."""

from __future__ import annotations

from django.urls import path

from . import views

urlpatterns = [
    path("", views.index, name="dashboard-index"),
    path("pairs/overview/", views.overview_rows_partial, name="dashboard-overview-rows"),
    path("pairs/<int:pair_id>/", views.pair_detail, name="dashboard-pair"),
    path("pairs/<int:pair_id>/series.csv", views.series_csv, name="dashboard-series-csv"),
    path("pairs/<int:pair_id>/bars.csv", views.bars_csv, name="dashboard-bars-csv"),
]
