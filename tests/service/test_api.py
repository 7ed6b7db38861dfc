"""The clinic service over HTTP, as an integrator meets it: problems, ETags, idempotency
keys, the access log, lists, operations, the OpenAPI document (credentials and roles:
test_credentials.py)."""

from __future__ import annotations

import httpx
import pytest
from openapi_spec_validator import validate

from pathway import Clinic
from tests.service.conftest import Server, assert_problem, enroll, pathway_cli, pathway_here

# problems -----------------------------------------------------------------------------------


def test_guard_refusal_is_409_with_every_reason(server: Server) -> None:
    with server.client("phil") as phil:
        enroll(phil, "GUARD-1")
        body = assert_problem(
            phil.post("/v1/patients/GUARD-1/transitions", json={"trigger": "hold"}), 409, "guard-refused"
        )
        assert body["trigger"] == "hold"
        assert body["reasons"] and all({"guard", "message"} <= set(r) for r in body["reasons"])
        assert body["exit_code"] == 3
        # Nothing was written.
        assert [e["trigger"] for e in phil.get("/v1/patients/GUARD-1/history").json()] == ["enroll"]


def test_invalid_trigger_not_found_and_field_errors(server: Server) -> None:
    with server.client("phil") as phil:
        enroll(phil, "PROB-1")
        body = assert_problem(
            phil.post("/v1/patients/PROB-1/transitions", json={"trigger": "perform_ablation"}),
            409,
            "invalid-trigger",
        )
        assert "start_evaluation" in body["detail"]
        assert_problem(phil.get("/v1/patients/NOBODY-HERE"), 404, "not-found")
        missing = assert_problem(phil.post("/v1/patients/PROB-1/transitions", json={}), 422, "invalid-input")
        assert any(p.startswith("trigger:") for p in missing["problems"])
        bad_value = phil.post(
            "/v1/patients/PROB-1/observations",
            json={"kind": "contact_attempt", "values": {"outcome": "maybe"}},
        )
        assert any("outcome" in p for p in assert_problem(bad_value, 422, "invalid-input")["problems"])
        malformed = phil.post(
            "/v1/patients/PROB-1/transitions", content=b"{nope", headers={"content-type": "application/json"}
        )
        assert_problem(malformed, 400, "bad-request")
        assert_problem(phil.get("/v1/no-such-thing"), 404, "not-found")
        # Nothing stored by any of them.
        assert phil.get("/v1/patients/PROB-1/observations").json() == []


# ETag / If-Match ------------------------------------------------------------------------------


def test_etag_and_if_match(server: Server) -> None:
    with server.client("phil") as phil:
        created = enroll(phil, "ETAG-1")
        assert created.headers["etag"] == '"1"'
        got = phil.get("/v1/patients/ETAG-1")
        assert got.headers["etag"] == '"1"' == f'"{got.json()["enrollment_version"]}"'
        ok = phil.post(
            "/v1/patients/ETAG-1/observations",
            json={"kind": "contact_attempt", "values": {"outcome": "no_response"}},
            headers={"If-Match": got.headers["etag"]},
        )
        assert ok.status_code == 201, ok.text
        stale = phil.post(
            "/v1/patients/ETAG-1/transitions",
            json={"trigger": "start_evaluation"},
            headers={"If-Match": '"1"'},
        )
        body = assert_problem(stale, 412, "stale-version")
        assert body["exit_code"] == 5
        assert_problem(
            phil.post(
                "/v1/patients/ETAG-1/transitions",
                json={"trigger": "start_evaluation"},
                headers={"If-Match": "x"},
            ),
            428,
            "precondition-malformed",
        )
        for odd in ('"²"', '"٣"'):  # digits to str.isdigit, not ASCII digits
            assert_problem(
                phil.post(
                    "/v1/patients/ETAG-1/transitions",
                    json={"trigger": "start_evaluation"},
                    headers={"If-Match": odd.encode()},
                ),
                428,
                "precondition-malformed",
            )
        fresh = phil.get("/v1/patients/ETAG-1").headers["etag"]
        assert fresh == '"2"'
        done = phil.post(
            "/v1/patients/ETAG-1/transitions",
            json={"trigger": "start_evaluation"},
            headers={"If-Match": fresh},
        )
        assert done.status_code == 200, done.text
        obs_id = ok.json()["id"]
        stale_correction = phil.post(
            f"/v1/patients/ETAG-1/observations/{obs_id}/correction",
            json={"reason": "wrong patient"},
            headers={"If-Match": fresh},
        )
        assert_problem(stale_correction, 412, "stale-version")


# idempotency ----------------------------------------------------------------------------------


def test_the_same_key_and_body_is_done_once(server: Server) -> None:
    with server.client("cora") as cora:
        key = {"Idempotency-Key": "enroll-IDEM-1"}
        first = cora.post("/v1/patients/IDEM-1/enrollments", json={"at": "2026-10-01"}, headers=key)
        again = cora.post("/v1/patients/IDEM-1/enrollments", json={"at": "2026-10-01"}, headers=key)
        assert first.status_code == again.status_code == 201
        assert again.json() == first.json()
        assert again.headers["idempotent-replayed"] == "true"
        assert again.headers["etag"] == first.headers["etag"]
        other = cora.post("/v1/patients/IDEM-1/enrollments", json={"at": "2026-10-02"}, headers=key)
        assert_problem(other, 422, "idempotency-key-reused")
        step = {"Idempotency-Key": "step-IDEM-1"}
        for _ in range(3):
            r = cora.post(
                "/v1/patients/IDEM-1/transitions", json={"trigger": "start_evaluation"}, headers=step
            )
            assert r.status_code == 200, r.text
        assert [e["trigger"] for e in cora.get("/v1/patients/IDEM-1/history").json()] == [
            "enroll",
            "start_evaluation",
        ]
        # A refusal is a response too: the retry gets the same refusal without a second try.
        hold = {"Idempotency-Key": "hold-IDEM-1"}
        first_refusal = cora.post("/v1/patients/IDEM-1/transitions", json={"trigger": "hold"}, headers=hold)
        second_refusal = cora.post("/v1/patients/IDEM-1/transitions", json={"trigger": "hold"}, headers=hold)
        assert first_refusal.status_code == second_refusal.status_code == 409
        assert second_refusal.json() == first_refusal.json()
    # Keys belong to their user: another user's identical key is theirs alone.
    with server.client("phil") as phil:
        theirs = phil.post(
            "/v1/patients/IDEM-1/transitions", json={"trigger": "start_evaluation"}, headers=step
        )
        assert_problem(theirs, 409, "invalid-trigger")


def test_idempotency_keys_survive_a_restart(server: Server) -> None:
    with server.client("cora") as cora:
        key = {"Idempotency-Key": "restart-1"}
        first = cora.post("/v1/patients/RESTART-1/enrollments", json={"at": "2026-10-01"}, headers=key)
        assert first.status_code == 201
    assert server.stop() == 0
    server.start()
    with server.client("cora") as cora:
        again = cora.post("/v1/patients/RESTART-1/enrollments", json={"at": "2026-10-01"}, headers=key)
    assert again.status_code == 201 and again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()


# who looked ----------------------------------------------------------------------------------


def test_every_read_of_a_patient_is_logged(server: Server) -> None:
    with server.client("cora") as cora:
        enroll(cora, "LOOK-1")
        for path in ("", "/check", "/history", "/observations", "/episodes"):
            assert cora.get(f"/v1/patients/LOOK-1{path}").status_code == 200
    with server.client("mara", role="physician") as mara:
        assert mara.get("/v1/patients/LOOK-1").status_code == 200
    with server.clinic() as clinic:
        seen = clinic.identities.accesses("LOOK-1")
    assert [(a["actor"], a["role"], a["what"]) for a in seen] == [
        ("cora", "coordinator", "status"),
        ("cora", "coordinator", "check"),
        ("cora", "coordinator", "history"),
        ("cora", "coordinator", "observations"),
        ("cora", "coordinator", "episodes"),
        ("mara", "physician", "status"),
    ]
    out = pathway_cli("audit", "access", "LOOK-1", db=server.db)
    assert out.returncode == 0, out.stderr
    assert "mara" in out.stdout and "physician" in out.stdout and "history" in out.stdout


# lists ----------------------------------------------------------------------------------------


def test_enrollments_are_paged_by_cursor(server: Server) -> None:
    with server.client("cora") as cora:
        for i in range(5):
            enroll(cora, f"PAGE-{i}", at=f"2026-09-0{i + 1}")
        seen: list[str] = []
        cursor = None
        pages = 0
        while True:
            params = {"limit": 2, "pathway": "cervical-neurotomy", **({"cursor": cursor} if cursor else {})}
            page = cora.get("/v1/enrollments", params=params).json()
            seen += [i["patient"] for i in page["items"]]
            pages += 1
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert_problem(cora.get("/v1/enrollments", params={"cursor": "!!"}), 422, "invalid-input")
        assert_problem(cora.get("/v1/enrollments", params={"limit": 0}), 422, "invalid-input")
    assert len(seen) == len(set(seen))
    assert [p for p in seen if p.startswith("PAGE-")] == [f"PAGE-{i}" for i in range(5)]
    assert pages == -(-len(seen) // 2)


def test_worklist_reports_and_workflows(server: Server) -> None:
    with server.client("cora") as cora:
        enroll(cora, "LIST-1", at="2026-01-05")
        items = cora.get("/v1/worklist").json()
        assert any(i["patient"] == "LIST-1" for i in items)
        for name in ("bottlenecks", "rtt", "funnel", "outcomes"):
            r = cora.get(f"/v1/reports/{name}")
            assert r.status_code == 200, (name, r.text)
        assert_problem(cora.get("/v1/reports/nonsense"), 422, "invalid-input")
        ids = [w["id"] for w in cora.get("/v1/workflows").json()]
        assert "cervical-neurotomy" in ids
        assert cora.get("/v1/workflows/cervical-neurotomy").json()["id"] == "cervical-neurotomy"
        assert_problem(cora.get("/v1/workflows/nope"), 404, "not-found")
        with server.clinic() as clinic:
            assert any(a["what"] == "worklist" for a in clinic.identities.accesses("LIST-1"))


# operations -----------------------------------------------------------------------------------


def status_count(metrics: str) -> float:
    """The count of GET /v1/patients/{patient} answered 200, in a /metrics text."""
    series = 'pathway_http_requests_total{method="GET",route="/v1/patients/{patient}",status="200"} '
    found = [line for line in metrics.splitlines() if line.startswith(series)]
    return float(found[0].removeprefix(series)) if found else 0.0


def test_health_readiness_metrics_and_the_outbox_schema(server: Server) -> None:
    assert httpx.get(server.url + "/healthz").json() == {"status": "ok"}
    ready = httpx.get(server.url + "/readyz").json()
    assert ready["status"] == "ready"
    with server.client("phil") as phil:
        enroll(phil, "OPS-1")
        phil.post("/v1/patients/OPS-1/transitions", json={"trigger": "start_evaluation"})
        phil.post("/v1/patients/OPS-1/transitions", json={"trigger": "hold"})
        schema = phil.get("/v1/schemas/outbox").json()
        before = status_count(httpx.get(server.url + "/metrics").text)
        for _ in range(3):
            phil.get("/v1/patients/OPS-1")
        phil.request("PROPFIND", "/v1/patients/OPS-1")  # a method the API has not: no series of its own
    metrics = httpx.get(server.url + "/metrics").text
    assert status_count(metrics) == before + 3  # other tests share this server
    assert 'method="OTHER"' in metrics and "PROPFIND" not in metrics
    assert 'pathway_changes_total{kind="advance"}' in metrics
    assert 'pathway_refusals_total{error="GuardRefused"}' in metrics
    assert 'route="/v1/patients/{patient}/transitions"' in metrics
    assert "OPS-1" not in metrics  # routes by template: no identifier in the metrics
    assert "pathway_outbox_pending" in metrics
    assert schema["$schema"].startswith("https://json-schema.org/")
    log = server.log.read_text() if server.log else ""
    assert '"route": "/v1/patients/{patient}/transitions"' in log and "OPS-1" not in log


def test_the_openapi_document_is_valid_and_complete(server: Server) -> None:
    document = httpx.get(server.url + "/openapi.json").json()
    validate(document)
    assert document["openapi"].startswith("3.1")
    paths = document["paths"]
    for path, method in [
        ("/v1/patients/{patient}/enrollments", "post"),
        ("/v1/patients/{patient}/observations", "post"),
        ("/v1/patients/{patient}/observations", "get"),
        ("/v1/patients/{patient}/observations/{observation_id}/correction", "post"),
        ("/v1/patients/{patient}/transitions", "post"),
        ("/v1/patients/{patient}", "get"),
        ("/v1/patients/{patient}/check", "get"),
        ("/v1/patients/{patient}/history", "get"),
        ("/v1/enrollments", "get"),
        ("/v1/worklist", "get"),
        ("/v1/reports/{name}", "get"),
        ("/v1/workflows", "get"),
        ("/v1/workflows/{workflow_id}", "get"),
        ("/v1/schemas/outbox", "get"),
        ("/healthz", "get"),
        ("/readyz", "get"),
        ("/metrics", "get"),
    ]:
        assert method in paths[path], (path, method)
    assert "Problem" in document["components"]["schemas"]


def test_sigterm_stops_the_server_cleanly(server: Server) -> None:
    assert server.stop() == 0
    server.start()
    assert httpx.get(server.url + "/healthz").status_code == 200


def test_serve_refuses_what_it_cannot_do(tmp_path) -> None:
    db = f"sqlite:///{tmp_path / 'x.db'}"
    missing = pathway_cli("serve", "--port", "1", db=db)
    assert missing.returncode == 4 and "no database" in missing.stderr
    Clinic.open(db).close()
    several = pathway_cli("serve", "--workers", "2", db=db)
    assert several.returncode == 1 and "SQLite" in several.stderr
    half = pathway_cli("serve", "--oidc-issuer", "https://idp.example", db=db)
    assert half.returncode == 1 and "go together" in half.stderr


@pytest.mark.parametrize("roles", [("coordinator",), ("coordinator", "physician")])
def test_users_and_tokens_from_the_command_line(tmp_path, roles) -> None:
    db = f"sqlite:///{tmp_path / 'u.db'}"
    role_args = [a for r in roles for a in ("--role", r)]
    assert pathway_here("users", "add", "ann", *role_args, db=db).returncode == 0
    again = pathway_here("users", "add", "ann", "--role", "coordinator", db=db)
    assert again.returncode == 1 and "already exists" in again.stderr
    typo = pathway_here("users", "add", "bea", "--role", "cordinator", db=db)
    assert typo.returncode == 1 and "unknown role" in typo.stderr
    made = pathway_here("tokens", "create", "ann", "--expires", "30", db=db)
    assert made.returncode == 0 and made.stdout.strip().startswith("pw_")
    token = made.stdout.strip()
    listed = pathway_here("tokens", "list", db=db)
    assert token not in listed.stdout and token[3:11] in listed.stdout
    with Clinic.open(db) as clinic:
        assert clinic.identities.authenticate(token, roles[0]).user == "ann"
    assert pathway_here("tokens", "revoke", "ann", token[3:11], db=db).returncode == 0
    with Clinic.open(db) as clinic, pytest.raises(Exception, match="revoked"):
        clinic.identities.authenticate(token)
    assert pathway_here("users", "disable", "nobody", db=db).returncode == 4
    assert "ann" in pathway_here("users", "list", db=db).stdout
