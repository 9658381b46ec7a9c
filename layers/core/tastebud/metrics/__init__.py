"""Serving metrics: one definition of each, and the outlets (Prometheus, the dashboard's window)."""
