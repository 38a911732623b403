"""Errors of the streaming layer."""

from domain.rejection import RejectionReason


class StreamsError(Exception):
    """Base of every baylink streams error."""


class WireError(StreamsError):
    """A Kafka message could not be decoded; carries the rejection reason to record."""

    def __init__(self, reason: RejectionReason, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
