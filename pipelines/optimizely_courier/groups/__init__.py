"""Courier groups: group runs, clocks, the scheduler (`courier serve`), and exports (Airflow, cron)."""
