"""SDMX data messages (SDMX-ML generic and structure-specific, SDMX-JSON, SDMX-CSV) as rows.

The flavour is told from the content, never the file name. Each observation becomes one row
of the ``sdmx-observations`` dataset: structure, series key and dimensions, time period and
the UTC instant it starts, value, unit, unit multiplier, decimals, observation status, every
attribute, and the area, mapped to a baylink region where it names one. An observation that
cannot be turned into a row becomes an invalid row naming it; only a payload that is no SDMX
at all raises PayloadError. ADR 9 gives the decisions.
"""

from __future__ import annotations

from connectors.payload import ParsedPayload
from domain.dataset import DatasetDefinition

NAME = "sdmx"
VERSION = "1"


def parse_sdmx(
    data: bytes, dataset: DatasetDefinition, structure: bytes | None = None
) -> ParsedPayload:
    """Rows, one per observation, from an SDMX data message in any of its formats.

    ``structure`` is an SDMX-ML structure message holding the DSD; structure-specific
    SDMX-ML needs it, the other flavours use it where given.
    """
    # sdmx1 loads pandas and an HTTP client when imported (0.8 s here): it is loaded with the
    # first SDMX payload, not with every `baylink` command that imports the formats.
    from connectors.sdmx_reading import read_sdmx_rows

    return read_sdmx_rows(data, dataset, structure)
