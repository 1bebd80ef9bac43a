"""Shared fixtures live in tests/plugins/, one module per kind of real server."""

pytest_plugins = [
    "tests.plugins.fake_egp",
    "tests.plugins.local_model",
    "tests.plugins.postgres",
    "tests.plugins.app",
    "tests.plugins.oidc",
    "tests.plugins.apptest",
]
