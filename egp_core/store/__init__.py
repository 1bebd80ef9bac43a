"""Conversation history in SQL (SQLite by default, PostgreSQL for shared deployments)."""

from .engine import DATA_DIR_ENV, DB_URL_ENV, data_dir, default_url
from .errors import ImportFailed, NotFound, SchemaTooNew, StoreError
from .store import ROLES, STATUSES, Conversation, Message, Store, open_store

__all__ = [
    "DATA_DIR_ENV", "DB_URL_ENV", "ROLES", "STATUSES", "Conversation", "ImportFailed", "Message",
    "NotFound", "SchemaTooNew", "Store", "StoreError", "data_dir", "default_url", "open_store",
]
