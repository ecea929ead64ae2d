"""Server-rendered pages (and the parts their scripts refresh) and their CSV downloads."""

from __future__ import annotations

from django.urls import path

from . import views

urlpatterns = [
    path("", views.index, name="dashboard-index"),
    path("pairs/overview/", views.overview_rows_partial, name="dashboard-overview-rows"),
    path("pairs/<int:pair_id>/", views.pair_detail, name="dashboard-pair"),
    path("pairs/<int:pair_id>/series.csv", views.series_csv, name="dashboard-series-csv"),
    path("pairs/<int:pair_id>/bars.csv", views.bars_csv, name="dashboard-bars-csv"),
    path("screener/", views.screener_page, name="dashboard-screener"),
    path("screener/runs/<int:run_id>/", views.screener_result_partial, name="dashboard-screener-result"),
    path("pairs/<int:pair_id>/backtest/", views.backtest_page, name="dashboard-backtest"),
    path(
        "pairs/<int:pair_id>/backtest/<int:backtest_id>/",
        views.backtest_result_partial,
        name="dashboard-backtest-result",
    ),
    path(
        "pairs/<int:pair_id>/backtest/<int:backtest_id>/trades.csv",
        views.backtest_trades_csv,
        name="dashboard-backtest-trades-csv",
    ),
    path(
        "pairs/<int:pair_id>/backtest/<int:backtest_id>/equity.csv",
        views.backtest_equity_csv,
        name="dashboard-backtest-equity-csv",
    ),
]
