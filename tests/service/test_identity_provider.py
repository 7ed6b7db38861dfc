"""OIDC: the service accepts JWTs of the clinic's identity provider, checked against the
provider's keys (a JWKS file), with the user and roles taken from configured claims."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from pathway import Clinic
from tests.service.conftest import Server, free_port

ISSUER = "https://idp.clinic.example"
AUDIENCE = "pathway"


@pytest.fixture(scope="module")
def keys() -> tuple[rsa.RSAPrivateKey, rsa.RSAPrivateKey]:
    return (
        rsa.generate_private_key(public_exponent=65537, key_size=2048),
        rsa.generate_private_key(public_exponent=65537, key_size=2048),
    )


@pytest.fixture(scope="module")
def oidc_server(keys, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("oidc")
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(keys[0].public_key()))
    (tmp / "jwks.json").write_text(
        json.dumps({"keys": [{**public, "kid": "k1", "use": "sig", "alg": "RS256"}]})
    )
    db = f"sqlite:///{tmp / 'pathway.db'}"
    Clinic.open(db).close()
    server = Server(
        db,
        free_port(),
        args=(
            "--oidc-issuer", ISSUER, "--oidc-audience", AUDIENCE, "--oidc-jwks", str(tmp / "jwks.json"),
            "--oidc-roles-claim", "pathway_roles",
        ),
        log=tmp / "serve.log",
    )  # fmt: skip
    server.start()
    yield server
    server.stop()


def token(key: rsa.RSAPrivateKey, **claims: object) -> str:
    now = int(time.time())
    body = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "u-123",
        "preferred_username": "dr.jones",
        "pathway_roles": ["physician", "janitor"],
        "iat": now,
        "exp": now + 300,
        **claims,
    }
    return jwt.encode(body, key, algorithm="RS256", headers={"kid": "k1"})


def get(server: Server, bearer: str, path: str = "/v1/me") -> httpx.Response:
    return httpx.get(server.url + path, headers={"Authorization": f"Bearer {bearer}"})


def test_a_valid_token_is_the_user_in_the_roles_it_names_that_pathway_knows(oidc_server, keys) -> None:
    me = get(oidc_server, token(keys[0]))
    assert me.status_code == 200, me.text
    assert me.json() == {"user": "dr.jones", "roles": ["physician"], "role": "physician", "via": "oidc"}


def test_changes_are_made_as_the_tokens_user(oidc_server, keys) -> None:
    headers = {"Authorization": f"Bearer {token(keys[0])}"}
    made = httpx.post(oidc_server.url + "/v1/patients/OIDC-1/enrollments", json={}, headers=headers)
    assert made.status_code == 201, made.text
    events = httpx.get(oidc_server.url + "/v1/patients/OIDC-1/history", headers=headers).json()
    assert (events[0]["actor"], events[0]["role"]) == ("dr.jones", "physician")


@pytest.mark.parametrize(
    "claims, signer",
    [
        ({"aud": "someone-else"}, 0),
        ({"iss": "https://evil.example"}, 0),
        ({"exp": int(time.time()) - 60}, 0),
        ({}, 1),  # signed with a key the JWKS does not hold
    ],
)
def test_a_token_of_another_audience_issuer_key_or_time_is_401(oidc_server, keys, claims, signer) -> None:
    refused = get(oidc_server, token(keys[signer], **claims))
    assert refused.status_code == 401
    assert refused.json()["type"] == "urn:pathway:problem:not-authenticated"


def test_a_token_granting_no_known_role_is_403(oidc_server, keys) -> None:
    refused = get(oidc_server, token(keys[0], pathway_roles=["janitor"]))
    assert refused.status_code == 403


def test_a_bad_jwks_file_is_refused_at_start(tmp_path: Path) -> None:
    from tests.service.conftest import pathway_cli

    db = f"sqlite:///{tmp_path / 'p.db'}"
    Clinic.open(db).close()
    (tmp_path / "jwks.json").write_text("not json")
    out = pathway_cli(
        "serve",
        "--oidc-issuer",
        ISSUER,
        "--oidc-audience",
        AUDIENCE,
        "--oidc-jwks",
        str(tmp_path / "jwks.json"),
        db=db,
    )
    assert out.returncode == 1 and "--oidc-jwks" in out.stderr
