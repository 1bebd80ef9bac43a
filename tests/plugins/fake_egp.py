"""Fixture: the fake EGP server (see tests/fake_egp.py)."""
