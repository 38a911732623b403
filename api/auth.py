"""Who is calling: `Authorization: Bearer <token>` resolved to a principal, or refused.

Three kinds of token are accepted: the administrator's token from the settings, a partner's
API key (checked against its stored digest by Governance), and a JWT from a configured OAuth2
issuer, verified with that issuer's public key and only with RS256 or ES256. Anything else is
refused with 401, whatever the route, before any data is read.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from api.errors import AuthenticationError
from api.settings import ApiSettings, JwtIssuer
from domain.errors import PartnerNotFoundError
from domain.partner import KEY_PREFIX
from domain.policy import Caller
from storage.governance import Governance

ADMIN = "admin"
AUDIT = "audit"
MIN_ADMIN_TOKEN_LENGTH = 24
_PLACEHOLDERS = frozenset(
    {"changeme", "change-me", "admin", "password", "secret", "token", "baylink", "test"}
)


class UnsafeSettingsError(Exception):
    """The settings would run the API with a guessable administrator token."""


def check_admin_token(settings: ApiSettings) -> None:
    """Refuse a placeholder or short admin token unless BAYLINK_ENV is development."""
    if settings.admin_token is not None:
        check_admin_token_value(settings.admin_token.get_secret_value(), settings.environment)


def check_admin_token_value(token: str, environment: str) -> None:
    """UnsafeSettingsError for a placeholder or short ``token`` outside development."""
    if environment == "development":
        return
    if token.strip().lower() in _PLACEHOLDERS or len(token) < MIN_ADMIN_TOKEN_LENGTH:
        raise UnsafeSettingsError(
            "the admin token (BAYLINK_ADMIN_TOKEN) is a placeholder or shorter than "
            f"{MIN_ADMIN_TOKEN_LENGTH} characters; set a random one (e.g. `openssl rand -hex "
            "32`), or BAYLINK_ENV=development for a local trial"
        )


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller, the scopes it holds and how it proved who it is."""

    caller: Caller
    scopes: frozenset[str]
    method: str

    @property
    def admin(self) -> bool:
        return self.caller.admin

    @property
    def name(self) -> str:
        """The partner id, or "admin": the key of rate limits and log lines."""
        return self.caller.partner_id or ADMIN


ADMINISTRATOR = Principal(Caller.administrator(), frozenset({ADMIN, AUDIT, "read"}), ADMIN)


class Authenticator:
    """Resolves bearer tokens; holds the admin token, Governance and the JWT issuers."""

    def __init__(
        self,
        admin_token: str | None,
        governance: Callable[[], Governance],
        issuers: Sequence[JwtIssuer] = (),
    ) -> None:
        self._admin_token = None if admin_token is None else admin_token.encode()
        self._governance = governance
        self._issuers = {issuer.issuer: _IssuerKeys(issuer) for issuer in issuers}

    def principal(self, authorization: str | None) -> Principal:
        """The principal a request's Authorization header names; AuthenticationError if none."""
        if not authorization:
            raise AuthenticationError("this route needs a credential: Authorization: Bearer ...")
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise AuthenticationError("the credential must be sent as Authorization: Bearer ...")
        if self._admin_token is not None and hmac.compare_digest(token.encode(), self._admin_token):
            return ADMINISTRATOR
        if token.startswith(f"{KEY_PREFIX}_"):
            return self._api_key(token)
        if token.count(".") == 2:
            return self._jwt(token)
        raise AuthenticationError("the credential is not valid")

    def _api_key(self, token: str) -> Principal:
        governance = self._governance()
        caller = governance.authenticate(token)
        if caller is None or caller.partner_id is None:
            raise AuthenticationError("the API key is unknown, revoked or expired")
        return self._partner(governance, caller.partner_id, "api-key")

    def _jwt(self, token: str) -> Principal:
        try:
            unverified: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise AuthenticationError("the token is not a readable JWT") from None
        keys = self._issuers.get(str(unverified.get("iss")))
        if keys is None:
            raise AuthenticationError("the token is not from a configured issuer")
        claims = keys.verified(token)
        partner_id = claims.get(keys.issuer.partner_claim)
        if not isinstance(partner_id, str) or not partner_id:
            raise AuthenticationError(
                f"the token has no partner in its {keys.issuer.partner_claim!r} claim"
            )
        return self._partner(self._governance(), partner_id, "jwt")

    @staticmethod
    def _partner(governance: Governance, partner_id: str, method: str) -> Principal:
        try:
            info = governance.partner(partner_id)
        except PartnerNotFoundError:
            raise AuthenticationError("the credential names no registered partner") from None
        caller = Caller(info.partner_id, info.region, info.clearance)
        return Principal(caller, frozenset(info.scopes), method)


class _IssuerKeys:
    """One issuer's verification: its key from a PEM file or its JWKS, and its claims."""

    def __init__(self, issuer: JwtIssuer) -> None:
        self.issuer = issuer
        self._pem: Any = None
        self._jwks: jwt.PyJWKClient | None = None
        if issuer.public_key_file is not None:
            self._pem = load_pem_public_key(issuer.public_key_file.read_bytes())
        else:
            assert issuer.jwks_url is not None
            self._jwks = jwt.PyJWKClient(issuer.jwks_url, cache_keys=True)

    def verified(self, token: str) -> dict[str, Any]:
        try:
            key = self._pem
            if self._jwks is not None:
                key = self._jwks.get_signing_key_from_jwt(token).key
            # Only the algorithms of the key's own type: a token naming another one is
            # refused before PyJWT tries to read the key for it.
            family = "RS" if isinstance(key, rsa.RSAPublicKey) else "ES"
            algorithms = [a for a in self.issuer.algorithms if a.startswith(family)]
            if not isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey) or not algorithms:
                raise AuthenticationError("the issuer's key is not one of its algorithms")
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=algorithms,
                audience=self.issuer.audience,
                issuer=self.issuer.issuer,
                leeway=self.issuer.leeway_seconds,
                options={"require": ["exp", "nbf", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise AuthenticationError("the token has expired") from None
        except jwt.ImmatureSignatureError:
            raise AuthenticationError("the token is not valid yet") from None
        except jwt.InvalidAudienceError:
            raise AuthenticationError("the token is for another audience") from None
        except jwt.PyJWTError:
            raise AuthenticationError("the token cannot be verified") from None
        return claims
