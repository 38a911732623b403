"""Credentials: the admin token, partner API keys (revocation, rotation with overlap) and JWTs
from configured issuers. Every credential that is not valid now gets 401 and no data, also
when generated: random tokens, forged JWTs and valid ones with one character changed."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from api.app import create_app
from api.auth import UnsafeSettingsError
from api.settings import ApiSettings, JwtIssuer
from storage.governance import Governance
from tests.integration.api.conftest import ServedGoverned, app_over, bearer
from tests.integration.api.governed import GZ_BUREAU, HK, HK_DEPT, MO_DSAT, PARTNERS, SZ
from tests.support.credentials import ADMIN

pytestmark = pytest.mark.integration

ISSUER_RSA = "https://login.hk.example/oauth2"
ISSUER_EC = "https://login.mo.example/oauth2"
ISSUER_JWKS = "https://login.gd.example/oauth2"
AUDIENCE = "https://baylink.example/api"
RECORDS = f"/v1/datasets/{SZ}/records"


@dataclass
class Issuers:
    rs: rsa.RSAPrivateKey
    es: ec.EllipticCurvePrivateKey
    jwks: rsa.RSAPrivateKey
    rogue: rsa.RSAPrivateKey
    rs_public_pem: bytes


def _pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@pytest.fixture(scope="module")
def jwks_url() -> Iterator[tuple[str, rsa.RSAPrivateKey]]:
    """A JWKS endpoint on a local port serving one RSA key (kid "k1")."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    document = json.dumps({"keys": [{**jwk, "kid": "k1", "use": "sig", "alg": "RS256"}]})

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = document.encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/jwks.json", key
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def issuers(
    tmp_path_factory: pytest.TempPathFactory, jwks_url: tuple[str, rsa.RSAPrivateKey]
) -> tuple[Issuers, list[JwtIssuer]]:
    directory = tmp_path_factory.mktemp("issuers")
    keys = Issuers(
        rsa.generate_private_key(public_exponent=65537, key_size=2048),
        ec.generate_private_key(ec.SECP256R1()),
        jwks_url[1],
        rsa.generate_private_key(public_exponent=65537, key_size=2048),
        b"",
    )
    keys.rs_public_pem = _pem(keys.rs)
    (directory / "rsa.pem").write_bytes(keys.rs_public_pem)
    (directory / "ec.pem").write_bytes(_pem(keys.es))
    configured = [
        JwtIssuer(issuer=ISSUER_RSA, audience=AUDIENCE, public_key_file=directory / "rsa.pem"),
        JwtIssuer(
            issuer=ISSUER_EC,
            audience=AUDIENCE,
            public_key_file=directory / "ec.pem",
            algorithms=("ES256",),
            partner_claim="client_id",
        ),
        JwtIssuer(issuer=ISSUER_JWKS, audience=AUDIENCE, jwks_url=jwks_url[0]),
    ]
    return keys, configured


@pytest.fixture
async def jwt_api(
    served_governed: ServedGoverned, issuers: tuple[Issuers, list[JwtIssuer]]
) -> AsyncIterator[httpx.AsyncClient]:
    with app_over(
        served_governed.event_store_url,
        served_governed.object_store_url,
        jwt_issuers=issuers[1],
        rate_limit_per_second=1e6,
        rate_limit_burst=10**6,
    ) as app:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://baylink") as client:
            yield client


def _claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "iss": ISSUER_RSA,
        "aud": AUDIENCE,
        "sub": HK_DEPT,
        "iat": now,
        "nbf": now - 5,
        "exp": now + 300,
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def _segment(part: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(part).encode()).decode().rstrip("=")


def _unsigned(claims: dict[str, Any]) -> str:
    return f"{_segment({'alg': 'none', 'typ': 'JWT'})}.{_segment(claims)}."


def _hs256_with(secret: bytes, claims: dict[str, Any]) -> str:
    """An HS256 token whose HMAC key is ``secret``: the key-confusion attack when the
    secret is the issuer's public key, which anyone has."""
    signing_input = f"{_segment({'alg': 'HS256', 'typ': 'JWT'})}.{_segment(claims)}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{base64.urlsafe_b64encode(signature).decode().rstrip('=')}"


async def _refused(api: httpx.AsyncClient, headers: dict[str, str]) -> None:
    response = await api.get(RECORDS, headers=headers)
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.headers["content-type"].startswith("application/problem+json")
    assert set(response.json()) <= {"type", "title", "status", "detail", "instance"}


async def test_a_valid_token_of_each_configured_issuer_reads_as_its_partner(
    jwt_api: httpx.AsyncClient, issuers: tuple[Issuers, list[JwtIssuer]]
) -> None:
    keys = issuers[0]
    rs256 = jwt.encode(_claims(), keys.rs, algorithm="RS256")
    es256 = jwt.encode(
        _claims(iss=ISSUER_EC, sub=None, client_id=MO_DSAT), keys.es, algorithm="ES256"
    )
    by_jwks = jwt.encode(
        _claims(iss=ISSUER_JWKS, sub=GZ_BUREAU), keys.jwks, algorithm="RS256",
        headers={"kid": "k1"},
    )  # fmt: skip

    hk = await jwt_api.get(RECORDS, params={"limit": 3}, headers=bearer(rs256))
    mo = await jwt_api.get("/v1/datasets", headers=bearer(es256))
    gz = await jwt_api.get("/v1/datasets", headers=bearer(by_jwks))

    assert hk.status_code == 200, hk.text
    assert {r["region"] for r in hk.json()["records"]} <= {"gd-shenzhen", "hk"}
    assert {d["id"] for d in mo.json()["datasets"]} == {SZ, "mo.traffic.readings"}
    assert {d["id"] for d in gz.json()["datasets"]} == {HK}


@pytest.mark.parametrize(
    "case",
    [
        "no credential",
        "basic scheme",
        "garbage",
        "unknown api key",
        "expired",
        "not yet valid",
        "without expiry",
        "wrong audience",
        "unknown issuer",
        "alg none",
        "hs256 with the rsa public key",
        "another issuer's key",
        "a key no issuer holds",
        "es256 where only rs256 is allowed",
        "unknown partner",
        "partner claim missing",
    ],
)
async def test_every_invalid_credential_is_refused_with_401_and_no_data(
    jwt_api: httpx.AsyncClient, issuers: tuple[Issuers, list[JwtIssuer]], case: str
) -> None:
    keys = issuers[0]
    now = int(time.time())
    tokens: dict[str, str | None] = {
        "no credential": None,
        "basic scheme": "",
        "garbage": "not-a-token",
        "unknown api key": "blk_0123456789ab_" + "x" * 43,
        "expired": jwt.encode(_claims(exp=now - 120), keys.rs, algorithm="RS256"),
        "not yet valid": jwt.encode(_claims(nbf=now + 600), keys.rs, algorithm="RS256"),
        "without expiry": jwt.encode(_claims(exp=None), keys.rs, algorithm="RS256"),
        "wrong audience": jwt.encode(_claims(aud="https://other.example"), keys.rs, "RS256"),
        "unknown issuer": jwt.encode(_claims(iss="https://rogue.example"), keys.rogue, "RS256"),
        "alg none": _unsigned(_claims()),
        "hs256 with the rsa public key": _hs256_with(keys.rs_public_pem, _claims()),
        "another issuer's key": jwt.encode(_claims(), keys.es, algorithm="ES256"),
        "a key no issuer holds": jwt.encode(_claims(), keys.rogue, algorithm="RS256"),
        "es256 where only rs256 is allowed": jwt.encode(
            _claims(iss=ISSUER_JWKS), keys.es, algorithm="ES256", headers={"kid": "k1"}
        ),
        "unknown partner": jwt.encode(_claims(sub="hk-nobody"), keys.rs, algorithm="RS256"),
        "partner claim missing": jwt.encode(_claims(sub=None), keys.rs, algorithm="RS256"),
    }
    token = tokens[case]
    if token is None:
        headers = {}
    elif case == "basic scheme":
        headers = {"Authorization": "Basic " + base64.b64encode(b"hk:secret").decode()}
    else:
        headers = bearer(token)

    await _refused(jwt_api, headers)


async def test_a_revoked_key_is_refused_at_once(
    served_governed: ServedGoverned, jwt_api: httpx.AsyncClient
) -> None:
    governance = Governance(served_governed.event_store_url)
    try:
        issued = governance.issue_key(MO_DSAT, datetime.now(UTC) - timedelta(seconds=1))
        assert (await jwt_api.get(RECORDS, headers=bearer(issued.key))).status_code == 200
        governance.revoke_key(MO_DSAT, issued.key_id, "laptop lost")
    finally:
        governance.close()

    await _refused(jwt_api, bearer(issued.key))


async def test_rotation_with_overlap_fails_no_request_and_then_ends_the_old_key(
    served_governed: ServedGoverned, jwt_api: httpx.AsyncClient
) -> None:
    overlap = timedelta(seconds=3)
    governance = Governance(served_governed.event_store_url)
    try:
        old = governance.issue_key(GZ_BUREAU, datetime.now(UTC) - timedelta(seconds=1))
        statuses: list[int] = []
        key, new_key = old.key, None
        for step in range(60):
            if step == 20:
                new = governance.rotate_key(GZ_BUREAU, old.key_id, overlap)
                rotated_at, new_key = time.monotonic(), new.key
            if step == 40:
                key = new_key or key  # the client picks the new key up some time later
            response = await jwt_api.get(f"/v1/datasets/{HK}", headers=bearer(key))
            statuses.append(response.status_code)
    finally:
        governance.close()

    assert statuses == [200] * 60
    assert key == new_key
    await asyncio.sleep(max(0.0, overlap.total_seconds() - (time.monotonic() - rotated_at)) + 0.5)
    await _refused(jwt_api, bearer(old.key))
    assert (await jwt_api.get(f"/v1/datasets/{HK}", headers=bearer(key))).status_code == 200


async def test_the_rate_limit_answers_429_with_retry_after_per_partner(
    served_governed: ServedGoverned,
) -> None:
    with app_over(
        served_governed.event_store_url,
        served_governed.object_store_url,
        rate_limit_burst=3,
        rate_limit_per_second=0.01,
    ) as app:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://baylink") as api:
            hk = bearer(served_governed.store.keys[HK_DEPT])
            first = [(await api.get("/v1/datasets", headers=hk)).status_code for _ in range(3)]
            limited = await api.get(RECORDS, headers=hk)
            other = await api.get(
                "/v1/datasets", headers=bearer(served_governed.store.keys[MO_DSAT])
            )
            admin = await api.get("/v1/datasets", headers=ADMIN)

    assert first == [200, 200, 200]
    assert limited.status_code == 429
    assert limited.headers["content-type"].startswith("application/problem+json")
    assert 1 <= int(limited.headers["retry-after"]) <= 100
    assert "records" not in limited.json()
    assert (other.status_code, admin.status_code) == (200, 200)


async def test_an_oversized_body_is_refused_before_anything_reads_it(
    served_governed: ServedGoverned,
) -> None:
    with app_over(
        served_governed.event_store_url, served_governed.object_store_url, max_body_bytes=1024
    ) as app:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://baylink") as api:
            declared = await api.request("GET", RECORDS, content=b"x" * 5000, headers=ADMIN)

            async def chunks() -> AsyncIterator[bytes]:
                for _ in range(5):
                    yield b"y" * 500

            streamed = await api.request("GET", RECORDS, content=chunks(), headers=ADMIN)
            small = await api.request("GET", "/v1/datasets", content=b"{}", headers=ADMIN)

    assert declared.status_code == 413
    assert declared.json()["type"] == "urn:baylink:problem:payload-too-large"
    assert streamed.status_code == 413
    assert small.status_code == 200


@pytest.mark.parametrize("token", ["changeme", "admin", "short-but-random-123"])
def test_a_placeholder_admin_token_refuses_to_start_outside_development(
    tmp_path: Path, token: str
) -> None:
    url, objects = f"sqlite:///{tmp_path}/e.sqlite", (tmp_path / "objects").as_uri()
    secret = SecretStr(token)

    with pytest.raises(UnsafeSettingsError, match="BAYLINK_ADMIN_TOKEN"):
        create_app(ApiSettings(admin_token=secret, event_store_url=url, object_store_url=objects))
    create_app(
        ApiSettings(
            admin_token=secret,
            environment="development",
            event_store_url=url,
            object_store_url=objects,
        )
    )


def test_the_admin_token_is_read_from_baylink_admin_token(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BAYLINK_ADMIN_TOKEN", "z" * 40)
    monkeypatch.setenv("BAYLINK_ENV", "development")

    settings = ApiSettings()

    assert settings.admin_token is not None
    assert settings.admin_token.get_secret_value() == "z" * 40
    assert settings.environment == "development"


_ASCII = st.characters(min_codepoint=33, max_codepoint=126)


@pytest.fixture(scope="module")
def auth_app(
    served_governed: ServedGoverned, issuers: tuple[Issuers, list[JwtIssuer]]
) -> Iterator[FastAPI]:
    with app_over(
        served_governed.event_store_url,
        served_governed.object_store_url,
        jwt_issuers=issuers[1],
        rate_limit_per_second=1e6,
        rate_limit_burst=10**6,
    ) as app:
        yield app


@st.composite
def forged_jwts(draw: st.DrawFn) -> str:
    now = int(time.time())
    header = {
        "alg": draw(st.sampled_from(["none", "None", "HS256", "RS256", "ES256", "PS256", ""])),
        "typ": "JWT",
    }
    if draw(st.booleans()):
        header["kid"] = draw(st.sampled_from(["k1", "k2", "../../etc/passwd"]))
    claims = {
        "iss": draw(st.sampled_from([ISSUER_RSA, "https://rogue.example", ""])),
        "aud": draw(st.sampled_from([AUDIENCE, "other"])),
        "sub": draw(st.sampled_from([*PARTNERS, "admin", ""])),
        "client_id": draw(st.sampled_from(PARTNERS)),
        "exp": now + draw(st.integers(-10_000, 10_000)),
        "nbf": now - draw(st.integers(-10_000, 10_000)),
    }
    signature = base64.urlsafe_b64encode(draw(st.binary(max_size=300))).decode().rstrip("=")
    return f"{_segment(header)}.{_segment(claims)}.{signature}"


def _status(app: FastAPI, token: str) -> tuple[int, str]:
    async def ask() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://baylink") as api:
            return await api.get(RECORDS, headers=bearer(token))

    response = asyncio.run(ask())
    return response.status_code, response.text


@settings(
    max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(token=st.one_of(st.text(_ASCII, min_size=1, max_size=200), forged_jwts()))
def test_no_generated_token_reads_anything(auth_app: FastAPI, token: str) -> None:
    status, body = _status(auth_app, token)

    assert status == 401, body
    assert "records" not in json.loads(body)


@pytest.fixture(scope="module")
def valid_token(issuers: tuple[Issuers, list[JwtIssuer]]) -> str:
    # Made once, so that every example (and Hypothesis's replay of it) changes the same token.
    now = int(time.time())
    claims = {"iss": ISSUER_RSA, "aud": AUDIENCE, "sub": PARTNERS[0], "exp": now + 3600,
              "nbf": now - 5}  # fmt: skip
    return jwt.encode(claims, issuers[0].rs, algorithm="RS256")


_TOKEN_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_a_valid_token_with_any_one_character_changed_is_refused(
    auth_app: FastAPI, valid_token: str, data: st.DataObject
) -> None:
    token = valid_token
    assert _status(auth_app, token)[0] == 200
    # Not the last character: it may carry only padding bits, decoding to the same signature.
    where = data.draw(st.sampled_from([i for i in range(len(token) - 1) if token[i] != "."]))
    replacement = data.draw(st.sampled_from([c for c in _TOKEN_ALPHABET if c != token[where]]))
    changed = token[:where] + replacement + token[where + 1 :]
    status, body = _status(auth_app, changed)

    assert status == 401, body
