"""Topic names: everything seen from outside carries ``baylink``."""

from __future__ import annotations

import re

_INGEST = re.compile(r"^baylink\.ingest\.(?P<dataset>.+)\.v(?P<version>\d+)$")


def ingest_topic(dataset_id: str, version: int) -> str:
    return f"baylink.ingest.{dataset_id}.v{version}"


def dataset_of_ingest_topic(topic: str) -> tuple[str, int] | None:
    """The dataset id and schema version an ingest topic belongs to, or None."""
    match = _INGEST.match(topic)
    if match is None:
        return None
    return match["dataset"], int(match["version"])
