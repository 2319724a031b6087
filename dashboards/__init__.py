"""Monitoring artifacts: Prometheus rules, Alertmanager config, Grafana dashboards (generated)."""
