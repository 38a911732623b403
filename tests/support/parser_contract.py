"""What every connector parser promises, whatever bytes it is given.

Either the whole payload is refused with a PayloadError that has a reason code and a message,
or every row it hands on is, once the ingest worker validates it against the dataset, accepted
or rejected with a reason and a message: nothing crashes and nothing vanishes.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from connectors.errors import PayloadError
from connectors.payload import ParsedPayload
from domain.dataset import DatasetDefinition
from domain.record import RecordValidator
from domain.region import RegionRegistry

NOW = datetime(2030, 1, 1, tzinfo=UTC)


def check_parser_contract(
    parse: Callable[[], ParsedPayload], dataset: DatasetDefinition
) -> ParsedPayload | PayloadError:
    """Run ``parse`` and check the promise; return what it gave, for further assertions."""
    outcome: ParsedPayload | PayloadError
    try:
        outcome = parse()
    except PayloadError as error:
        outcome = error
    if isinstance(outcome, PayloadError):
        assert outcome.reason, "a PayloadError without a reason code"
        assert outcome.message, "a PayloadError without a message"
        return outcome
    parsed = outcome
    assert all(isinstance(row, dict) for row in parsed.rows)
    validator = RecordValidator(dataset, RegionRegistry.default())
    checked = validator.validate(parsed.rows, dataset.owner_region, NOW)
    assert len(checked.accepted) + len(checked.rejected) == len(parsed.rows)
    for rejection in checked.rejected:
        assert rejection.reason, f"row {rejection.index} rejected without a reason"
        assert rejection.message, f"row {rejection.index} rejected without a message"
    return parsed
