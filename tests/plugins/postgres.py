"""Fixture: a throwaway PostgreSQL server (Debian's postgresql package)."""
