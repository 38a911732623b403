"""Errors raised by storage: event store wiring and the record index."""


class StorageError(Exception):
    """Base of every baylink storage error."""


class EventStoreUrlError(StorageError):
    """An event-store URL is not one that baylink can open."""


class BatchConflictError(StorageError):
    """Another writer recorded this chain position or these records first; reload and retry."""
