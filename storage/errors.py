"""Errors raised by storage: event store wiring and the record index."""


class StorageError(Exception):
    """Base of every baylink storage error."""


class EventStoreUrlError(StorageError):
    """An event-store URL is not one that baylink can open."""


class BatchConflictError(StorageError):
    """Another writer recorded this chain position or these records first; reload and retry."""


class ObjectStoreError(StorageError):
    """Base of the object store's errors."""


class ObjectNotFoundError(ObjectStoreError):
    """No object is stored under this key."""


class CorruptObjectError(ObjectStoreError):
    """An object's bytes do not match the SHA-256 recorded when it was stored."""


class ObjectStoreUrlError(ObjectStoreError):
    """An object-store URL is not one that baylink can open."""


class InvalidObjectKeyError(ObjectStoreError, ValueError):
    """An object key is not a relative '/'-separated path that every object store can hold."""


class ObjectKeyConflictError(ObjectStoreError):
    """A local store cannot hold a key and, beside it, keys that use it as a folder."""


class QueryError(StorageError):
    """Base of the errors of queries over snapshots and the not-yet-snapshotted tail."""


class UnknownDatasetError(QueryError):
    """No dataset with this id is registered."""


class UnknownSnapshotError(QueryError):
    """The dataset has published no snapshot with this id."""


class UnknownRecordError(QueryError):
    """No stored batch holds a record with this id."""


class BadFilterError(QueryError):
    """A query parameter is malformed or contradicts another; ``parameter`` names it."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(message)
        self.parameter = parameter


class BadCursorError(BadFilterError):
    """A paging cursor is malformed, or was issued for another query."""

    def __init__(self, message: str) -> None:
        super().__init__("cursor", message)


class SnapshotUnavailableError(QueryError):
    """A published snapshot's manifest or files cannot be read from the object store."""


class NodeKeyError(StorageError):
    """The node's Ed25519 signing key file is missing, unreadable or not an Ed25519 key."""


class TreeHeadNotFoundError(StorageError):
    """No signed tree head of this size is recorded."""


class LogPositionNotFoundError(StorageError):
    """No event is stored at this log position under the tree head named."""


class ReplayError(StorageError):
    """A replay cannot run: its sandbox is not empty, or its end is not a position of the log."""


class UnknownPublishedSnapshotError(StorageError):
    """No published snapshot has this id, or more than one dataset published one with it."""
