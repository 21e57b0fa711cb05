"""The exception family of the storage layer."""


class StorageError(Exception):
    """Base of every error raised by `storage`."""


class SchemaOutdatedError(StorageError):
    """The database's schema is not the one this version of leadbot expects."""
