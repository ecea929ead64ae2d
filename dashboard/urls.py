"""Server-rendered pages (and the parts their scripts refresh) and their CSV downloads."""

from __future__ import annotations

from django.urls import path

from .views import alerts, backtest, pairs, screener

urlpatterns = [
    path("", pairs.index, name="dashboard-index"),
    path("pairs/overview/", pairs.overview_rows_partial, name="dashboard-overview-rows"),
    path("pairs/<int:pair_id>/", pairs.pair_detail, name="dashboard-pair"),
    path("pairs/<int:pair_id>/series.csv", pairs.series_csv, name="dashboard-series-csv"),
    path("pairs/<int:pair_id>/bars.csv", pairs.bars_csv, name="dashboard-bars-csv"),
    path("alerts/", alerts.alerts_page, name="dashboard-alerts"),
    path("alerts.csv", alerts.alerts_csv, name="dashboard-alerts-csv"),
    path("screener/", screener.screener_page, name="dashboard-screener"),
    path("screener/runs/<int:run_id>/", screener.screener_result_partial, name="dashboard-screener-result"),
    path("pairs/<int:pair_id>/backtest/", backtest.backtest_page, name="dashboard-backtest"),
    path(
        "pairs/<int:pair_id>/backtest/<int:backtest_id>/",
        backtest.backtest_result_partial,
        name="dashboard-backtest-result",
    ),
    path(
        "pairs/<int:pair_id>/backtest/<int:backtest_id>/trades.csv",
        backtest.backtest_trades_csv,
        name="dashboard-backtest-trades-csv",
    ),
    path(
        "pairs/<int:pair_id>/backtest/<int:backtest_id>/equity.csv",
        backtest.backtest_equity_csv,
        name="dashboard-backtest-equity-csv",
    ),
]
