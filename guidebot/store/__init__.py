"""Persistence: SQLAlchemy models, migrations and the Store used by the dialog and cases."""

from guidebot.store.db import Store, default_database_url, now, open_store, upgrade

__all__ = ["Store", "default_database_url", "now", "open_store", "upgrade"]

# The outbox's tables live on the same Base; importing them here registers them with
# Base.metadata wherever the store is used (migrations check, create_all in tools).
from guidebot.outbox import models as _outbox_models  # noqa: F401
