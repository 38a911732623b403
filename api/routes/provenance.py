"""Where a record came from: its provenance, batch, hash-chain links and snapshot."""

from __future__ import annotations

from fastapi import APIRouter, Request
from opentelemetry import trace

from api.dependencies import PolicyDep, RecordId
from api.errors import problem_responses
from api.schemas import RecordProvenanceModel

router = APIRouter(tags=["provenance"])


@router.get("/records/{record_id}/provenance", responses=problem_responses(401, 404, 422, 429, 503))
def record_provenance(
    record_id: RecordId, policy: PolicyDep, request: Request
) -> RecordProvenanceModel:
    """The record's provenance, the batch that stored it and the snapshot that holds it, with
    the id of the trace that carried it from its connector into the store (and a link to it
    when a trace viewer is configured). Only for a record the caller may read."""
    found = RecordProvenanceModel.of(policy.provenance(record_id))
    if found.trace_id is not None:
        span = trace.get_current_span()
        span.set_attribute("baylink.record.trace_id", found.trace_id)
        span_id = found.provenance.get("span_id")
        if span_id:
            # This query joins the record's trace as a link to the connector's span.
            span.add_link(
                trace.SpanContext(int(found.trace_id, 16), int(str(span_id), 16), is_remote=True),
                {"baylink.link": "record provenance"},
            )
        template = request.app.state.settings.trace_url_template
        if template:
            found.trace_url = template.format(trace_id=found.trace_id)
    return found
