"""Feeds: the feed model, semantics, the compiler, scaffolding, review, load operations."""
