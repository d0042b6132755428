"""Experiment results: definitions in experiments/*.yml, compiled into dbt models over the domain
tables (units, attributed events, one observation per unit and metric), and the statistics."""
