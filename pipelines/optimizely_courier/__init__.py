"""optimizely-courier: Optimizely's Enriched Events Export into keyed, reviewed warehouse tables."""

__version__ = "0.1.0"
