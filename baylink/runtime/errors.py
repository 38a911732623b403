"""Errors of the embedded runtime; each is reported by the command line as one line."""

from __future__ import annotations

from baylink.errors import BaylinkCliError


class RuntimeFailureError(BaylinkCliError):
    """Base of every error raised while starting, running or stopping the embedded runtime."""


class PortInUseError(RuntimeFailureError):
    """A port the runtime needs is already taken by another process."""


class BrokerStartError(RuntimeFailureError):
    """The embedded Kafka-protocol broker did not start or did not answer in time."""


class ChildRestartLimitError(RuntimeFailureError):
    """A supervised process kept dying, so the supervisor gave up and stopped everything."""


class ChildStartError(RuntimeFailureError):
    """A supervised process could not be started at all (missing program, bad directory)."""


class RuntimeStateNotFoundError(RuntimeFailureError):
    """No runtime.json in the data directory: no `baylink up` is running from it."""


class RuntimeStateCorruptError(RuntimeFailureError):
    """runtime.json exists but cannot be read as a runtime state."""


class AlreadyRunningError(RuntimeFailureError):
    """A live `baylink up` already owns the data directory."""
