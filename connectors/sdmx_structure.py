"""Data structure definitions (DSDs): read from the SDMX-ML a source gives, or inferred.

Structure-specific SDMX-ML and SDMX-CSV name their dimensions, attributes and measures only
by column, so sdmx1 needs the DSD to tell them apart. A structure message may hold several
DSDs; the one the data cites is used. SDMX-CSV arriving without its DSD is read with one
inferred from its header (see ``infer_csv_structure``), and the notes say so.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sdmx.message
import sdmx.reader.xml

# sdmx1 2.28's SDMX-ML 3.0 reader copies the 2.1 reader's parsers when first imported, and the
# 2.1 reader adds a parser for the namespace of every structure-specific message it reads; if
# v30 is first imported after such a message, it fails on that namespace (ValueError). So it
# is imported here, before any message is read.
import sdmx.reader.xml.v30
from sdmx.model import common, v30

from connectors.errors import PayloadError
from connectors.sdmx_quiet import describe_error, quiet_sdmx
from connectors.sdmx_xml import STRUCTURE, inspect_sdmx_ml

# SDMX cross-domain concepts that are attributes wherever they appear, plus the names
# statistics offices commonly give attribute columns. Anything else in an SDMX-CSV header
# that is not a measure is taken for a dimension.
KNOWN_ATTRIBUTES = frozenset(
    {
        "OBS_STATUS",
        "OBS_CONF",
        "OBS_COM",
        "OBS_PRE_BREAK",
        "CONF_STATUS",
        "CONF_STATUS_OBS",
        "UNIT_MEASURE",
        "UNIT_MULT",
        "UNIT",
        "DECIMALS",
        "TITLE",
        "TITLE_COMPL",
        "COMMENT",
        "COMMENT_OBS",
        "TIME_FORMAT",
        "COLL_METHOD",
        "COMPILING_ORG",
        "SOURCE_AGENCY",
        "DATA_COMP",
        "BASE_PER",
        "BASE_YEAR",
        "EMBARGO_TIME",
        "PRE_BREAK_VALUE",
        "PUBL_PUBLIC",
        "PUBL_ECB",
        "PUBL_MU",
        "COLLECTION",
        "NAT_TITLE",
        "BREAKS",
        "FOOTNOTE",
        "UPDATED",
        "REF_PERIOD_DETAIL",
    }
)
_MEASURE = re.compile(r"OBS_VALUE[0-9]*")
_TIME = frozenset({"TIME_PERIOD", "TIME"})
_COMPONENT_ID = re.compile(r"[A-Za-z_][A-Za-z0-9_@$\-]*")
_FIXED_COLUMNS = ("STRUCTURE", "STRUCTURE_ID", "STRUCTURE_NAME", "ACTION", "SERIES_KEY", "OBS_KEY")


def read_structure(data: bytes, cited: Sequence[str]) -> Any:
    """The DSD in an SDMX-ML structure message: the one named in ``cited`` or the only one."""
    facts = inspect_sdmx_ml(data)
    if facts.flavour != STRUCTURE:
        raise PayloadError(
            "bad-structure",
            f"the structure given is an {facts.flavour} message; expected an SDMX-ML "
            "structure message holding a data structure definition (DSD)",
        )
    reader: Any = sdmx.reader.xml.Reader()  # sdmx1's convert() is untyped
    try:
        with quiet_sdmx():
            message = reader.convert(io.BytesIO(data))
    except Exception as error:  # sdmx1 raises many kinds on malformed input
        raise PayloadError(
            "bad-structure", f"the structure message cannot be read: {describe_error(error)}"
        ) from None
    if not isinstance(message, sdmx.message.StructureMessage):
        raise PayloadError("bad-structure", "the structure message holds no structures")
    structures = dict(message.structure.items())
    for structure_id in cited:
        if structure_id in structures:
            return structures[structure_id]
    if len(structures) == 1:
        return next(iter(structures.values()))
    if not structures:
        raise PayloadError(
            "bad-structure", "the structure message holds no data structure definition (DSD)"
        )
    raise PayloadError(
        "bad-structure",
        f"the structure message holds DSDs {sorted(structures)} and the data cites "
        f"{list(cited) or 'none'}; pass a structure message with the one the data uses",
    )


@dataclass(frozen=True, slots=True)
class InferredStructure:
    """A DSD built from an SDMX-CSV header, and how each column was taken."""

    dsd: Any
    dimensions: tuple[str, ...]
    attributes: tuple[str, ...]
    measures: tuple[str, ...]


def infer_csv_structure(header: Sequence[str], agency: str, structure_id: str) -> InferredStructure:
    """A DSD for an SDMX-CSV 2.0 header: measures by name (OBS_VALUE, OBS_VALUE2, ...),
    attributes by their cross-domain concept names or a ``[...]`` suffix, every other
    column a dimension.
    """
    columns = list(header)
    labelled = "STRUCTURE_NAME" in columns[:3]
    position = 0
    while position < len(columns) and _component_id(columns[position]) in _FIXED_COLUMNS:
        position += 1
    dimensions: list[str] = []
    attributes: list[str] = []
    measures: list[str] = []
    step = 2 if labelled else 1  # with STRUCTURE_NAME, each column is followed by its label
    for column in columns[position::step]:
        component = _component_id(column)
        if not component or component in (*dimensions, *attributes, *measures):
            continue
        if _MEASURE.fullmatch(component):
            measures.append(component)
        elif component in KNOWN_ATTRIBUTES or column.strip().startswith(f"{component}["):
            # Only attributes may hold several values ("ATTR[]", "TITLE[en;fr]").
            attributes.append(component)
        else:
            dimensions.append(component)
    agency_ = common.Agency(id=agency or "unknown")
    dsd = v30.DataStructureDefinition(id=structure_id or "unknown", maintainer=agency_)
    for component in dimensions:
        cls = v30.TimeDimension if component in _TIME else v30.Dimension
        dsd.dimensions.append(cls(id=component))
    for component in measures or ["OBS_VALUE"]:
        dsd.measures.append(v30.Measure(id=component))
    for component in attributes:
        dsd.attributes.append(common.DataAttribute(id=component))
    return InferredStructure(dsd, tuple(dimensions), tuple(attributes), tuple(measures))


def _component_id(column: str) -> str:
    """``DIM_1: Dimension 1`` and ``ATTR_1[]`` → ``DIM_1``, ``ATTR_1``; ``STRUCTURE[;]`` too."""
    match = _COMPONENT_ID.match(column.strip())
    return match[0] if match else ""
