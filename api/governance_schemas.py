"""Bodies and answers of the governance routes: partners and keys, the whitelist, agreements.

Request models forbid any field they do not declare, and declare only what a caller may set:
a body naming e.g. a classification, a state, an owner or a key digest is refused with 422
before anything changes.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, JsonValue

from domain.agreement import AgreementTerms, RowScope
from domain.dataset import DatasetKind
from domain.region import DEFAULT_REGIONS
from domain.transformation import Transformation, TransformationKind
from domain.whitelist import WhitelistRule
from storage.governance import AgreementInfo, CutAgreement, IssuedKey, PartnerInfo

PARTNER_ID_PATTERN = r"^[a-z0-9][a-z0-9-]{1,79}$"
AGREEMENT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$"
RULE_ID_PATTERN = AGREEMENT_ID_PATTERN
KEY_ID_PATTERN = r"^[A-Za-z0-9]{1,64}$"
_REGION_PATTERN = r"^[a-z]{2}(-[a-z0-9]+)*$"
_DATASET_ID_PATTERN = r"^[a-z0-9][a-z0-9-]*(\.[a-z0-9][a-z0-9-]*)+$"
_FIELD_PATTERN = r"^[a-z_][a-z0-9_]*$"
_JURISDICTION_PATTERN = r"^[A-Z]{2}$"
MAX_OVERLAP_MINUTES = 7 * 24 * 60
# The regions the platform knows are configuration: the document lists them, so a client (or a
# generator) learns which codes a partner or a provider may have.
REGION_CODES = [region.code for region in DEFAULT_REGIONS]
_KNOWN_REGION: dict[str, Any] = {"enum": REGION_CODES}

ClassificationLabel = Literal["public", "internal", "sensitive", "restricted"]
Scope = Literal["read", "subscribe", "audit"]
Reason = Annotated[str, Field(min_length=1, max_length=500, pattern=r"\S")]
Text = Annotated[str, Field(min_length=1, max_length=200, pattern=r"\S")]
FieldName = Annotated[str, Field(pattern=_FIELD_PATTERN, max_length=80)]
DatasetRef = Annotated[str, Field(pattern=_DATASET_ID_PATTERN, max_length=120)]
# A mapping keyed by dataset id: JSON Schema's patternProperties alone would let any other key
# through with any value, where the server refuses it.
_BY_DATASET: dict[str, Any] = {
    "propertyNames": {"pattern": _DATASET_ID_PATTERN, "maxLength": 120},
    "additionalProperties": False,
}


class _Request(BaseModel):
    """A request body: any field it does not declare is refused."""

    model_config = ConfigDict(extra="forbid")


# Partners and keys ---------------------------------------------------------------------------


class PartnerRegistration(_Request):
    """A new partner. Its region is set here, once; the platform issues its first key."""

    region: str = Field(
        pattern=_REGION_PATTERN, max_length=40, examples=["hk"], json_schema_extra=_KNOWN_REGION
    )
    name: Text = Field(examples=["Transport Department"])
    clearance: ClassificationLabel = Field(
        default="public", description="The highest classification it may see."
    )
    scopes: list[Scope] = Field(default=["read"], min_length=1, max_length=3)
    partner_id: str | None = Field(
        default=None,
        pattern=PARTNER_ID_PATTERN,
        description="Defaults to one made of region and name, e.g. hk-transport-department.",
    )


class KeyRequest(_Request):
    """A new key for a partner; with ``replaces``, a rotation: the old key keeps working
    for ``overlap_minutes``, then ends."""

    replaces: str | None = Field(
        default=None, pattern=KEY_ID_PATTERN, description="Id of the key rotated out."
    )
    overlap_minutes: int = Field(default=60, ge=0, le=MAX_OVERLAP_MINUTES)


class ReasonRequest(_Request):
    """Why: recorded with the change."""

    reason: Reason


class PartnerModel(BaseModel):
    """A partner; its keys by id only (a key is shown once, when issued)."""

    partner_id: str
    region: str
    name: str
    clearance: str
    scopes: list[str]
    active_keys: list[str] = Field(description="Ids of the keys valid now.")

    @classmethod
    def of(cls, info: PartnerInfo) -> PartnerModel:
        return cls(
            partner_id=info.partner_id,
            region=info.region,
            name=info.name,
            clearance=info.clearance.label,
            scopes=list(info.scopes),
            active_keys=list(info.active_keys),
        )


class IssuedKeyModel(BaseModel):
    """A new API key, shown this once: only its digest is stored."""

    partner_id: str
    key_id: str
    key: str = Field(description="Send as Authorization: Bearer <key>.")
    replaces: str | None = Field(default=None, description="The key rotated out, if any.")
    replaced_key_ends_in_minutes: int | None = None

    @classmethod
    def of(cls, issued: IssuedKey, replaces: str | None, overlap: int | None) -> IssuedKeyModel:
        return cls(
            partner_id=issued.partner_id,
            key_id=issued.key_id,
            key=issued.key,
            replaces=replaces,
            replaced_key_ends_in_minutes=overlap if replaces is not None else None,
        )


class RegisteredPartner(BaseModel):
    partner: PartnerModel
    api_key: IssuedKeyModel


class PartnerList(BaseModel):
    partners: list[PartnerModel]


# Whitelist ---------------------------------------------------------------------------------


def _one_of(*names: str) -> list[JsonValue]:
    """JSON Schema for: exactly one of these optional properties is given (not null)."""
    return [
        {
            "required": [name],
            "properties": {
                other: ({"not": {"type": "null"}} if other == name else {"type": "null"})
                for other in names
            },
        }
        for name in names
    ]


class WhitelistRuleModel(_Request):
    """One permitted direction of crossing, for one dataset or every dataset of a kind."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"oneOf": _one_of("dataset_id", "dataset_kind")}
    )

    rule_id: str = Field(pattern=RULE_ID_PATTERN, examples=["cn-hk-traffic"])
    source_jurisdiction: str = Field(pattern=_JURISDICTION_PATTERN, examples=["CN"])
    destination_jurisdiction: str = Field(pattern=_JURISDICTION_PATTERN, examples=["HK"])
    dataset_id: DatasetRef | None = None
    dataset_kind: DatasetKind | None = None
    max_classification: ClassificationLabel = Field(
        description="Up to sensitive: restricted data never leaves its jurisdiction."
    )
    purposes: list[Text] = Field(min_length=1, max_length=20)
    personal_data: bool = False
    legal_basis: Text = Field(examples=["GBA-SC-2026-0001"])
    valid_from: AwareDatetime
    valid_until: AwareDatetime | None = None

    @classmethod
    def of(cls, rule: WhitelistRule) -> WhitelistRuleModel:
        return cls.model_validate(rule.as_dict())


class WhitelistModel(BaseModel):
    version: int = Field(description="Raised by every change; cited by every decision.")
    rules: list[WhitelistRuleModel]


class CutAgreementModel(BaseModel):
    """An active agreement that loses access to a dataset (or some of its fields)."""

    agreement_id: str
    dataset_id: str
    before: str
    after: str

    @classmethod
    def of(cls, cut: CutAgreement) -> CutAgreementModel:
        return cls(
            agreement_id=cut.agreement_id,
            dataset_id=cut.dataset_id,
            before=cut.before,
            after=cut.after,
        )


class WhitelistChange(BaseModel):
    """A whitelist change made, or only tried (``dry_run``), and the agreements it cuts."""

    dry_run: bool
    rule_id: str
    whitelist_version: int = Field(description="After the change; the current one on a dry run.")
    cut: list[CutAgreementModel]


# Agreements ------------------------------------------------------------------------------


class RowScopeModel(_Request):
    """Which rows the agreement reaches; an absent limit is no limit."""

    regions: list[Annotated[str, Field(pattern=_REGION_PATTERN, max_length=40)]] | None = None
    bbox: list[float] | None = Field(
        default=None,
        min_length=4,
        max_length=4,
        description="min_lon, min_lat, max_lon, max_lat in WGS-84 degrees.",
    )
    start: AwareDatetime | None = None
    end: AwareDatetime | None = None


class TransformationModel(_Request):
    """A transformation the agreement requires; which parameters apply depends on the kind."""

    kind: TransformationKind
    field: FieldName | None = None
    keep: int | None = Field(default=None, description="mask: characters kept at the end.")
    unit: str | None = Field(default=None, description="coarsen_time: minute, hour or day.")
    grid_degrees: float | None = Field(default=None, description="coarsen_location: grid size.")
    h3_resolution: int | None = Field(default=None, description="coarsen_location: H3 cells.")
    window: str | None = Field(default=None, description="aggregate: minute, hour or day.")
    group_by: list[FieldName] | None = None
    min_count: int | None = Field(default=None, description="aggregate: smallest group shown.")
    measures: dict[str, str] | None = Field(
        default=None, description="aggregate: field to count, sum, mean, min or max."
    )

    def transformation(self) -> Transformation:
        return Transformation.from_dict(self.model_dump(mode="json", exclude_none=True))


class AgreementProposal(_Request):
    """The terms of a new agreement. It starts proposed; the provider is the datasets' owner
    region (given or not, it must be that)."""

    agreement_id: str = Field(pattern=AGREEMENT_ID_PATTERN, examples=["sz-hk-traffic"])
    provider_region: str | None = Field(
        default=None, pattern=_REGION_PATTERN, max_length=40, examples=["gd-shenzhen"]
    )
    consumer_partner: str = Field(pattern=PARTNER_ID_PATTERN, examples=["hk-transport-department"])
    datasets: list[DatasetRef] = Field(
        min_length=1, max_length=50, examples=[["gd-shenzhen.traffic.readings"]]
    )
    purpose: Text = Field(examples=["traffic-management"])
    valid_from: AwareDatetime
    valid_until: AwareDatetime | None = None
    fields: dict[DatasetRef, list[FieldName]] = Field(
        default_factory=dict,
        description="Permitted fields per dataset; absent: every field.",
        json_schema_extra=_BY_DATASET,
    )
    row_scope: RowScopeModel | None = None
    transformations: dict[DatasetRef, list[TransformationModel]] = Field(
        default_factory=dict, json_schema_extra=_BY_DATASET
    )

    def terms(self, provider_region: str) -> AgreementTerms:
        scope = self.row_scope
        return AgreementTerms(
            agreement_id=self.agreement_id,
            provider_region=provider_region,
            consumer_partner=self.consumer_partner,
            datasets=frozenset(self.datasets),
            purpose=self.purpose,
            valid_from=self.valid_from,
            valid_until=self.valid_until,
            fields={k: frozenset(v) for k, v in self.fields.items()},
            row_scope=RowScope()
            if scope is None
            else RowScope.from_dict(scope.model_dump(mode="json")),
            transformations={
                k: tuple(t.transformation() for t in v) for k, v in self.transformations.items()
            },
        )


class TransitionRequest(_Request):
    """A transition without a reason takes no fields: a body naming any is refused."""


class HistoryStep(BaseModel):
    state: str
    note: str = Field(description="Who made the change (and why, for suspend and revoke).")


class AgreementModel(BaseModel):
    """An agreement's terms, its recorded state and how it got there."""

    agreement_id: str
    provider_region: str
    consumer_partner: str
    datasets: list[str]
    purpose: str
    valid_from: str
    valid_until: str | None
    fields: dict[str, list[str]]
    row_scope: dict[str, Any]
    transformations: dict[str, list[dict[str, Any]]]
    state: str
    whitelist_rules: list[str] = Field(description="Rules it relied on when made active.")
    history: list[HistoryStep]

    @classmethod
    def of(cls, info: AgreementInfo) -> AgreementModel:
        return cls(
            **info.terms.as_dict(),
            state=info.state.value,
            whitelist_rules=list(info.whitelist_rules),
            history=[HistoryStep(state=s, note=n) for s, n in info.history],
        )


class AgreementList(BaseModel):
    agreements: list[AgreementModel]
