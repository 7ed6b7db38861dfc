"""The clinic service's credentials and roles over HTTP: no or bad credentials, revoked
tokens and disabled users are 401 (before any judgement of the input), every operation
but the open ones asks for credentials, and actor and role come from the identity."""

from __future__ import annotations

import time

import httpx

from tests.service.conftest import Server, assert_problem, enroll


def test_no_credentials_bad_token_revoked_token_disabled_user_are_401(server: Server) -> None:
    with server.client(user=None) as anonymous:
        body = assert_problem(anonymous.get("/v1/worklist"), 401, "not-authenticated")
        assert "Bearer" in body["detail"]
        assert anonymous.get("/v1/worklist").headers["www-authenticate"].startswith("Bearer")
        bad = anonymous.get("/v1/worklist", headers={"Authorization": "Bearer pw_nonsense"})
        assert_problem(bad, 401, "not-authenticated")
        assert_problem(
            anonymous.get("/v1/worklist", headers={"Authorization": "Basic abc"}), 401, "not-authenticated"
        )
    with server.clinic() as clinic:
        clinic.identities.add_user("temp-revoked", ["coordinator"])
        token = clinic.identities.create_token("temp-revoked")["token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert httpx.get(server.url + "/v1/me", headers=headers).json()["user"] == "temp-revoked"
    with server.clinic() as clinic:
        clinic.identities.revoke("temp-revoked")
    assert_problem(refused_soon(server, headers), 401, "not-authenticated")
    with server.clinic() as clinic:
        clinic.identities.add_user("temp-disabled", ["coordinator"])
        token = clinic.identities.create_token("temp-disabled")["token"]
        clinic.identities.disable("temp-disabled")
    refused = httpx.get(server.url + "/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert "disabled" in assert_problem(refused, 401, "not-authenticated")["detail"]


def refused_soon(server: Server, headers: dict[str, str]) -> httpx.Response:
    """`GET /v1/me` once refused: at once on SQLite; on PostgreSQL the service's token
    cache forgets a token when the change is notified, within moments (3 s at most here)."""
    deadline = time.monotonic() + 3
    while True:
        answer = httpx.get(server.url + "/v1/me", headers=headers)
        if answer.status_code != 200 or server.db.startswith("sqlite") or time.monotonic() > deadline:
            return answer
        time.sleep(0.01)


def test_credentials_are_judged_before_the_input(server: Server) -> None:
    bad = {"Authorization": "Bearer pw_nonsense"}
    with server.client(user=None) as anonymous:
        for headers in ({}, bad):
            invalid = anonymous.post("/v1/patients/P-ANY/transitions", json={"trigger": 7}, headers=headers)
            assert_problem(invalid, 401, "not-authenticated")
            listed = anonymous.get("/v1/enrollments?limit=0", headers=headers)
            assert_problem(listed, 401, "not-authenticated")
    with server.client("cora") as cora:  # with good credentials the same input is 422
        assert_problem(cora.post("/v1/patients/P-ANY/transitions", json={"trigger": 7}), 422, "invalid-input")
    with server.client("cora", role="surgeon") as stranger:  # a role not theirs: 403 before 422
        refused = stranger.post("/v1/patients/P-ANY/transitions", json={"trigger": 7})
        assert refused.status_code == 403, refused.text


def test_every_operation_but_the_open_ones_asks_for_credentials(server: Server) -> None:
    spec = httpx.get(server.url + "/openapi.json").json()
    assert spec["components"]["securitySchemes"]["bearer"] | {"description": ""} == {
        "type": "http",
        "scheme": "bearer",
        "description": "",
    }
    open_ones = {"/healthz", "/readyz", "/metrics", "/fhir/metadata", "/v1/schemas/outbox"}
    asked = 0
    with server.client(user=None) as anonymous:
        for path, operations in spec["paths"].items():
            for method, operation in operations.items():
                documented = operation.get("security") == [{"bearer": []}]
                guarded = path.startswith(("/v1/", "/fhir/")) and path not in open_ones
                assert documented == guarded, f"{method.upper()} {path}: security {operation.get('security')}"
                if not guarded:
                    continue
                url = path.replace("{patient}", "P-ANY").replace("{patient_id}", "P-ANY")
                url = url.replace("{", "").replace("}", "").replace("_id", "")
                answer = anonymous.request(method.upper(), url, json={})
                assert answer.status_code == 401, f"{method.upper()} {path}: {answer.status_code}"
                asked += 1
    assert asked >= 15


def test_the_role_comes_from_the_identity(server: Server) -> None:
    with server.client("mara") as mara:
        # Two roles and none named: the request must say which.
        assert_problem(mara.get("/v1/me"), 422, "invalid-input")
        assert mara.get("/v1/me", headers={"X-Pathway-Role": "physician"}).json()["role"] == "physician"
    with server.client("cora", role="physician") as cora:
        body = assert_problem(cora.get("/v1/me"), 403, "role-refused")
        assert body["exit_code"] == 3


def test_actor_and_role_of_a_change_are_the_callers_never_the_bodys(server: Server) -> None:
    with server.client("phil") as phil:
        enroll(phil, "ID-ACTOR")
        sneaky = phil.post(
            "/v1/patients/ID-ACTOR/transitions", json={"trigger": "start_evaluation", "actor": "someone"}
        )
        body = assert_problem(sneaky, 422, "invalid-input")
        assert any(p.startswith("actor:") for p in body["problems"])
        assert (
            phil.post("/v1/patients/ID-ACTOR/transitions", json={"trigger": "start_evaluation"}).status_code
            == 200
        )
        events = phil.get("/v1/patients/ID-ACTOR/history").json()
    assert [(e["trigger"], e["actor"], e["role"]) for e in events] == [
        ("enroll", "phil", "physician"),
        ("start_evaluation", "phil", "physician"),
    ]


def test_a_role_the_trigger_does_not_allow_is_403_naming_the_roles(server: Server) -> None:
    with server.client("cora") as cora:
        enroll(cora, "ROLE-1")
        cora.post("/v1/patients/ROLE-1/transitions", json={"trigger": "start_evaluation"})
        body = assert_problem(
            cora.post("/v1/patients/ROLE-1/transitions", json={"trigger": "order_imaging"}),
            403,
            "role-refused",
        )
    assert body["roles"] == ["physician"]
