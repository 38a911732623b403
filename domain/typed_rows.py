"""A dataset's row schema as a msgspec type, so a well-formed batch is checked while decoded.

Decoding a msgpack batch straight into typed rows checks types, required fields, unknown
fields and ranges in C; the validator then only converts times and derives record ids. The
type accepts a value only where the validator's general rules would accept it unchanged,
and anything it refuses is left to those rules, which say why (domain.record).
"""

from __future__ import annotations

import math
import sys
from datetime import datetime
from typing import Annotated, Any

import msgspec
from msgspec import UNSET, UnsetType

from domain.dataset import DatasetDefinition, FieldSpec, FieldType

MAX_STRING_LENGTH = 65_536
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
_FLOAT_MAX = sys.float_info.max
REGION = "region"


def _finite_bound(bound: float | None) -> bool:
    # Dataset files give finite floats; anything else (a FieldSpec built in code with an int
    # or NaN bound) is left to the general rules, which compare exactly.
    return bound is None or (type(bound) is float and math.isfinite(bound))


def _value_type(spec: FieldSpec) -> Any:
    """The field's type with its constraints, or None when only the general rules apply."""
    if spec.type is FieldType.STRING:
        return Annotated[str, msgspec.Meta(max_length=MAX_STRING_LENGTH)]
    if spec.type is FieldType.BOOL:
        return bool
    if spec.type is FieldType.TIMESTAMP:
        return Annotated[datetime, msgspec.Meta(tz=True)]
    if spec.type is FieldType.GEOMETRY:
        return None  # a geometry is made canonical by the general rules, never passed as is
    if not (_finite_bound(spec.minimum) and _finite_bound(spec.maximum)):
        return None
    if spec.type is FieldType.INT64:
        low = INT64_MIN if spec.minimum is None else max(INT64_MIN, math.ceil(spec.minimum))
        high = INT64_MAX if spec.maximum is None else min(INT64_MAX, math.floor(spec.maximum))
        return Annotated[int, msgspec.Meta(ge=low, le=high)] if low <= high else None
    # Finite bounds: NaN and the infinities fail them, as they fail the general rules.
    low_f = -_FLOAT_MAX if spec.minimum is None else spec.minimum
    high_f = _FLOAT_MAX if spec.maximum is None else spec.maximum
    return Annotated[float, msgspec.Meta(ge=low_f, le=high_f)]


def row_decoder(definition: DatasetDefinition) -> msgspec.msgpack.Decoder[Any] | None:
    """A decoder of a whole batch into typed rows, or None if the dataset's schema cannot be
    expressed exactly (then every batch takes the general path).

    Each row decodes to a struct whose fields are the dataset's, in order, then ``region``
    (UNSET when the row has none).
    """
    if REGION in definition.field_names:
        return None
    fields: list[tuple[str, Any] | tuple[str, Any, Any]] = []
    rename: dict[str, str] = {}
    for position, spec in enumerate(definition.fields):
        value_type = _value_type(spec)
        if value_type is None:
            return None
        attribute = f"f{position}"
        rename[attribute] = spec.name
        if spec.required:
            fields.append((attribute, value_type))
        else:
            fields.append((attribute, value_type | None, None))
    fields.append(("region_", str | UnsetType, UNSET))
    rename["region_"] = REGION
    row_type = msgspec.defstruct(
        "TypedRow",
        fields,
        rename=rename,
        forbid_unknown_fields=True,
        kw_only=True,  # optional and required fields come in the dataset's order
        gc=False,
    )
    return msgspec.msgpack.Decoder(list[row_type])  # type: ignore[valid-type]
