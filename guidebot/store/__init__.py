"""Persistence: SQLAlchemy models, migrations and the Store used by the dialog and cases."""

from guidebot.store.db import Store, default_database_url, now, open_store, upgrade

__all__ = ["Store", "default_database_url", "now", "open_store", "upgrade"]
