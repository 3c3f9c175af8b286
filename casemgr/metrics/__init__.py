"""KPI dashboard, Prometheus metrics and process-mining export."""
