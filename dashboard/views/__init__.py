"""Server-rendered pages: the pairs overview, the live pair page and its backtests, the screener, the alerts,
plus CSV downloads."""
