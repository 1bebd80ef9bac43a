"""Fixture: the real embedded local server with the bundled model."""
