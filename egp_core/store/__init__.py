"""Conversation history in SQL (SQLite by default, PostgreSQL for shared deployments)."""

from .engine import DATA_DIR_ENV, DB_URL_ENV, data_dir, default_url
from .errors import ImportFailed, NotFound, SchemaTooNew, StoreError
from .exchange import (
    MAX_IMPORT_BYTES,
    export_all_json,
    export_conversation_json,
    export_conversation_markdown,
    import_json,
)
from .store import ROLES, STATUSES, Conversation, Message, Store, open_store
from .usage import usage_rows

__all__ = [
    "DATA_DIR_ENV", "DB_URL_ENV", "MAX_IMPORT_BYTES", "ROLES", "STATUSES", "Conversation", "ImportFailed",
    "Message", "NotFound", "SchemaTooNew", "Store", "StoreError", "data_dir", "default_url",
    "export_all_json", "export_conversation_json", "export_conversation_markdown", "import_json",
    "open_store", "usage_rows",
]
