"""Runs: a courier run, the dbt build, history, progress, the lock, explore, status, notifications."""
