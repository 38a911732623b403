"""Errors raised by the domain: every one names what was wrong."""


class DomainError(Exception):
    """Base of every baylink domain error."""


class DatasetDefinitionError(DomainError):
    """A dataset definition is malformed or inconsistent."""


class UnknownRegionError(DomainError):
    """A region code is not in the region registry."""


class UnknownClassificationError(DomainError):
    """A classification level is not one of the known levels."""


class ProvenanceError(DomainError):
    """A provenance value is incomplete or malformed."""


class DatasetNotFoundError(DomainError):
    """No dataset with this id is registered."""


class DatasetAlreadyRegisteredError(DomainError):
    """A dataset with this id is registered already with a different definition."""


class ChainIntegrityError(DomainError):
    """A batch does not follow the head of its hash chain."""


class WhitelistRuleError(DomainError):
    """A whitelist rule is malformed or cannot be applied."""


class WhitelistRuleNotFoundError(DomainError):
    """No whitelist rule with this id is in force."""


class WhitelistRuleExistsError(WhitelistRuleError):
    """A whitelist rule with this id is in force already."""


class AgreementTermsError(DomainError):
    """A sharing agreement's terms are malformed or inconsistent."""


class AgreementExistsError(AgreementTermsError):
    """A sharing agreement with this id exists already."""


class AgreementStateError(DomainError):
    """A sharing agreement cannot make this transition from its current state."""


class TransformationError(DomainError):
    """A required transformation is malformed or cannot apply to its field."""


class PartnerError(DomainError):
    """A partner or one of its keys is malformed, unknown or cannot change this way."""


class PartnerExistsError(PartnerError):
    """A partner with this id is registered already."""


class PartnerNotFoundError(DomainError):
    """No partner with this id is registered."""


class ApiKeyNotFoundError(PartnerError):
    """The partner has no API key with this id."""


class AgreementNotFoundError(DomainError):
    """No sharing agreement with this id exists."""


class SubscriptionTermsError(DomainError):
    """A subscription's terms are malformed or inconsistent."""


class SubscriptionStateError(DomainError):
    """A subscription cannot make this transition from its current state."""


class SubscriptionNotFoundError(DomainError):
    """No subscription with this id exists (or the caller may not see it)."""


class MerkleRangeError(DomainError):
    """A Merkle tree size, leaf index or proof range lies outside the tree it names."""


class MerkleProofError(DomainError):
    """A Merkle inclusion or consistency proof does not prove what it claims."""


class TreeHeadError(DomainError):
    """A tree head is malformed, or its signature does not verify under the given key."""


class LogLeafError(DomainError):
    """A Merkle log leaf's position, topic, originator or state digest is malformed."""
