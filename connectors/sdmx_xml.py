"""A first, safe look at an SDMX-ML payload: which message it is and which structure it names.

SDMX-ML never needs a document type declaration, and a DTD is how XML is turned against its
reader (entity expansion, "billion laughs"; external entities reading local files or URLs).
So a payload with a DOCTYPE is refused here, before sdmx1's own lxml parser (which resolves
internal entities by default) ever sees it. This look reads only the prolog and the header,
with entity resolution, DTD loading and network access off.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

from lxml import etree

from connectors.errors import PayloadError

GENERIC = "SDMX-ML generic"
STRUCTURE_SPECIFIC = "SDMX-ML structure-specific"
STRUCTURE = "SDMX-ML structure"

_FLAVOURS = {
    "GenericData": GENERIC,
    "GenericTimeSeriesData": GENERIC,
    "StructureSpecificData": STRUCTURE_SPECIFIC,
    "StructureSpecificTimeSeriesData": STRUCTURE_SPECIFIC,
    "Structure": STRUCTURE,
}
# The header ends where the first data set (or the structures) begin; nothing after it is read.
_BODY = frozenset({"DataSet", "Structures"})
_MAX_HEADER_ELEMENTS = 10_000
# A DOCTYPE after the optional byte-order mark, XML declaration, processing instructions and
# comments: where a prolog may declare one.
_PROLOG_DOCTYPE = re.compile(
    rb"(?:\xef\xbb\xbf)?\s*(?:(?:<\?.*?\?>|<!--.*?-->)\s*)*<!DOCTYPE", re.S
)


@dataclass(frozen=True, slots=True)
class SdmxMlFacts:
    """What the prolog and header say: the message flavour and the structure ids it cites."""

    flavour: str
    structure_ids: tuple[str, ...]


def inspect_sdmx_ml(data: bytes) -> SdmxMlFacts:
    """The flavour of an SDMX-ML message; PayloadError when it is no SDMX-ML or not safe."""
    events = etree.iterparse(
        io.BytesIO(data),
        events=("start", "end"),
        resolve_entities=False,
        load_dtd=False,
        no_network=True,
        huge_tree=False,
    )
    root: etree._Element | None = None
    ids: list[str] = []
    try:
        for count, (event, element) in enumerate(events):
            if root is None:
                root = element
                _refuse_doctype(element)
            name = _localname(element)
            if event == "start" and name == "Ref" and element.get("id"):
                ids.append(str(element.get("id")))
            elif event == "end" and name == "URN" and element.text:
                ids.append(_id_in_urn(element.text))
            if (event == "start" and name in _BODY and element is not root) or (
                count > _MAX_HEADER_ELEMENTS
            ):
                break
    except etree.XMLSyntaxError as error:
        # libxml2 2.14 stops at an entity's amplification limit before the root element:
        # still a payload refused for its DTD, and said so.
        if _PROLOG_DOCTYPE.match(data):
            raise _doctype_refused() from None
        raise PayloadError("not-xml", f"not well-formed XML: {error}") from None
    if root is None:
        raise PayloadError("not-xml", "the payload holds no XML element")
    name = _localname(root)
    if name == "Error":
        text = " ".join(t.strip() for t in root.itertext() if t.strip())
        raise PayloadError("sdmx-error", f"the source sent an SDMX error message: {text[:300]}")
    flavour = _FLAVOURS.get(name)
    if flavour is None:
        raise PayloadError(
            "not-sdmx", f"root element <{name}> is not an SDMX-ML data or structure message"
        )
    return SdmxMlFacts(flavour=flavour, structure_ids=tuple(ids))


def _localname(element: etree._Element) -> str:
    # QName() refuses tags such as "message:Data" whose prefix was never declared.
    tag = element.tag
    return tag.rsplit("}", maxsplit=1)[-1] if isinstance(tag, str) else ""


def _refuse_doctype(element: etree._Element) -> None:
    info = element.getroottree().docinfo
    if info.doctype or info.internalDTD is not None:
        raise _doctype_refused()


def _doctype_refused() -> PayloadError:
    return PayloadError(
        "xml-doctype",
        "the XML declares a document type (DTD); SDMX-ML needs none and entity "
        "declarations are not read, so the payload is refused",
    )


def _id_in_urn(urn: str) -> str:
    """``urn:...DataStructure=ECB:ECB_EXR1(1.0)`` → ``ECB_EXR1``."""
    tail = urn.strip().rsplit("=", maxsplit=1)[-1]
    return tail.split(":", maxsplit=1)[-1].split("(", maxsplit=1)[0]
