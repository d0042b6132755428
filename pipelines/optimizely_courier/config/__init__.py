"""Configuration: sources.yml (couriers, groups, warehouse), credentials, and the languages it is
written in (file patterns, cron schedules, durations), read once into frozen dataclasses."""
