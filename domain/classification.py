"""Classification levels, ordered from least to most protected."""

from __future__ import annotations

from enum import IntEnum

from domain.errors import UnknownClassificationError


class Classification(IntEnum):
    """How protected a field, and so a dataset, is; comparisons follow the order."""

    PUBLIC = 0
    INTERNAL = 1
    SENSITIVE = 2
    RESTRICTED = 3

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, value: str) -> Classification:
        try:
            return cls[value.strip().upper()]
        except (KeyError, AttributeError):
            known = ", ".join(level.label for level in cls)
            raise UnknownClassificationError(
                f"unknown classification {value!r}; expected one of {known}"
            ) from None
