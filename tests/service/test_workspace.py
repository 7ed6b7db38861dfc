"""The workspace over HTTP as a browser uses it (cookies and forms): sign-in with a
password and lock-out, session cookies, CSRF on every form, the worklist, the patient page
with an input error, a refusal, a hold, a correction; reads logged; sign-out."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.service.conftest import Server

PASSWORD = "a long enough password"


@pytest.fixture(scope="module")
def staff(server: Server) -> Server:
    with server.clinic() as clinic:
        for name in ("cora", "phil", "mara"):
            clinic.identities.set_password(name, PASSWORD)
        clinic.identities.add_user("locky", ["coordinator"], PASSWORD)
    return server


def browser(server: Server) -> httpx.Client:
    return httpx.Client(base_url=server.url, follow_redirects=False, timeout=30)


def sign_in(client: httpx.Client, name: str, password: str = PASSWORD, role: str = "") -> httpx.Response:
    return client.post("/signin", data={"name": name, "password": password, "role": role})


def csrf(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, "every form carries the CSRF token"
    return found.group(1)


def test_pages_need_a_session_and_the_cookie_is_guarded(staff: Server) -> None:
    with browser(staff) as b:
        assert b.get("/").headers["location"] == "/signin"
        assert "Sign in" in b.get("/signin").text
        wrong = sign_in(b, "cora", "not the password")
        assert wrong.status_code == 401 and "unknown user or wrong password" in wrong.text
        nobody = sign_in(b, "nobody", PASSWORD)
        assert nobody.status_code == 401 and "unknown user or wrong password" in nobody.text
        ok = sign_in(b, "cora")
        assert ok.status_code == 303 and ok.headers["location"] == "/"
        cookie = ok.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie
        page = b.get("/")
        assert page.status_code == 200 and "Worklist" in page.text and "cora (coordinator)" in page.text


def test_five_failures_lock_the_user_out(staff: Server) -> None:
    with browser(staff) as b:
        for _ in range(5):
            assert sign_in(b, "locky", "wrong password!").status_code == 401
        locked = sign_in(b, "locky")
        assert locked.status_code == 401 and "too many failed sign-ins" in locked.text


def test_a_role_the_user_does_not_have_is_refused(staff: Server) -> None:
    with browser(staff) as b:
        refused = sign_in(b, "cora", role="physician")
        assert refused.status_code == 401 and "does not have the role" in refused.text
        assert sign_in(b, "mara", role="physician").status_code == 303
        assert "mara (physician)" in b.get("/").text


def test_a_patient_walk_with_an_input_error_a_refusal_a_hold_and_a_correction(staff: Server) -> None:
    with staff.client("phil") as api:
        api.post("/v1/patients/WS-1/enrollments", json={"at": "2026-10-01"})
    with browser(staff) as b:
        sign_in(b, "phil")
        page = b.get("/patients/WS-1")
        assert page.status_code == 200 and 'id="state">referred<' in page.text
        token = csrf(page.text)
        # No CSRF token: refused, nothing done.
        forged = b.post("/patients/WS-1/advance", data={"trigger": "start_evaluation"})
        assert forged.status_code == 403
        moved = b.post("/patients/WS-1/advance", data={"csrf": token, "trigger": "start_evaluation"})
        assert moved.status_code == 200 and 'id="state">evaluation<' in moved.text
        # An input error is shown beside its field, and nothing is stored.
        bad = b.post(
            "/patients/WS-1/record",
            data={"csrf": token, "kind": "baseline", "nrs": "12", "ndi": "20", "onset_date": "2025-01-01"},
        )
        assert bad.status_code == 422
        assert re.search(r'class="field-error" role="alert">nrs: [^<]*0-10', bad.text)
        assert "None yet." in bad.text
        # A step refused says why before it is tried (disabled with its reasons).
        assert 'aria-describedby="why-schedule_blocks" class="refused"' in bad.text
        assert "no baseline" in bad.text or "baseline" in bad.text
        refused = b.post("/patients/WS-1/advance", data={"csrf": token, "trigger": "schedule_blocks"})
        assert refused.status_code == 409 and 'role="alert"' in refused.text
        recorded = b.post(
            "/patients/WS-1/record",
            data={"csrf": token, "kind": "contact_attempt", "outcome": "wrong_number", "at": "2026-10-02"},
        )
        assert recorded.status_code == 200 and "recorded contact_attempt" in recorded.text
        number = re.search(r'name="observation" value="(\d+)"', recorded.text)
        assert number
        corrected = b.post(
            "/patients/WS-1/correct",
            data={"csrf": token, "observation": number.group(1), "reason": "another patient's call"},
        )
        assert (
            corrected.status_code == 200
            and "entered in error</strong>: another patient&#39;s call" in corrected.text
        )
        held = b.post(
            "/patients/WS-1/advance", data={"csrf": token, "trigger": "hold", "reason": "travelling"}
        )
        assert held.status_code == 200 and 'id="state">on_hold<' in held.text
        resumed = b.post("/patients/WS-1/advance", data={"csrf": token, "trigger": "resume"})
        assert resumed.status_code == 200 and 'id="state">evaluation<' in resumed.text
    with staff.clinic() as clinic:
        events = clinic.history("WS-1")
        assert [(e.trigger, e.actor, e.role) for e in events][-3:] == [
            ("start_evaluation", "phil", "physician"),
            ("hold", "phil", "physician"),
            ("resume", "phil", "physician"),
        ]
        assert any(
            a["what"] == "workspace patient" and a["actor"] == "phil"
            for a in clinic.identities.accesses("WS-1")
        )


def test_steps_another_role_takes_are_disabled_and_say_whose_they_are(staff: Server) -> None:
    with staff.client("phil") as api:
        api.post("/v1/patients/WS-ROLE/enrollments", json={"at": "2026-10-01"})
        api.post("/v1/patients/WS-ROLE/transitions", json={"trigger": "start_evaluation"})
    step = r'<button type="submit" id="step-{}" ([^>]*)>'
    with browser(staff) as b:
        sign_in(b, "cora")  # a coordinator: ordering imaging is the physician's
        page = b.get("/patients/WS-ROLE").text
        imaging = re.search(step.format("order_imaging"), page)
        assert imaging and "disabled" in imaging.group(1)
        assert '<span class="blocked" id="why-order_imaging">needs physician</span>' in page
        hold = re.search(step.format("hold"), page)
        assert hold and "disabled" not in hold.group(1)  # a coordinator's own step
    with browser(staff) as b:
        sign_in(b, "phil")
        imaging = re.search(step.format("order_imaging"), b.get("/patients/WS-ROLE").text)
        assert imaging and "disabled" not in imaging.group(1)


def test_odd_form_values_get_the_page_with_the_error_never_a_500(staff: Server) -> None:
    with staff.client("phil") as api:
        api.post("/v1/patients/WS-ODD/enrollments", json={"at": "2026-10-01"})
    with browser(staff) as b:
        sign_in(b, "phil")
        token = csrf(b.get("/patients/WS-ODD").text)
        for number in ("abc", "²", "-1", "1.5"):
            data = {"csrf": token, "observation": number, "reason": "x"}
            odd = b.post("/patients/WS-ODD/correct", data=data)
            assert odd.status_code == 422 and "observation" in odd.text, (number, odd.status_code)
        for data in (
            {"trigger": "no_such_trigger"},
            {"trigger": "hold", "reason": "a\x00b"},
            {"trigger": "start_evaluation", "at": "²⁰²⁶-01-01"},
        ):
            odd = b.post("/patients/WS-ODD/advance", data={"csrf": token, **data})
            assert odd.status_code in (409, 422) and 'role="alert"' in odd.text, (data, odd.status_code)
        odd = b.post("/patients/WS-ODD/record", data={"csrf": token, "kind": "no_such_kind"})
        assert odd.status_code == 422
        for due in ("abc", "²", "-5"):
            listed = b.get("/", params={"due_within": due})
            assert listed.status_code == 200 and 'role="alert"' in listed.text, (due, listed.status_code)


def test_the_worklist_filters_and_the_manager_page(staff: Server) -> None:
    with staff.client("cora") as api:
        api.post("/v1/patients/WS-2/enrollments", json={"at": "2026-10-01"})
    with browser(staff) as b:
        sign_in(b, "cora")
        page = b.get("/", params={"kind": "new_referral"})
        assert "WS-2" in page.text and "new referral" in page.text
        assert "WS-2" not in b.get("/", params={"kind": "rtt_breach"}).text
        assert b.get("/", params={"due_within": "x"}).status_code == 200
        manager = b.get("/manager")
        assert manager.status_code == 200 and '<section id="outcomes">' in manager.text


def test_sign_out_ends_the_session(staff: Server) -> None:
    with browser(staff) as b:
        signed = sign_in(b, "cora")
        secret = signed.cookies.get("pathway_session")
        token = csrf(b.get("/").text)
        assert b.post("/signout", data={"csrf": token}).headers["location"] == "/signin"
    with browser(staff) as other:
        other.cookies.set("pathway_session", secret or "")
        assert other.get("/").headers["location"] == "/signin"  # the old cookie is dead


def test_a_closed_episode_can_be_reopened_with_a_reason(staff: Server) -> None:
    with staff.client("phil") as api:
        api.post("/v1/patients/WS-3/enrollments", json={"at": "2026-10-01"})
        api.post("/v1/patients/WS-3/transitions", json={"trigger": "decline", "reason": "changed mind"})
    with browser(staff) as b:
        sign_in(b, "phil")
        page = b.get("/patients/WS-3")
        assert 'id="reopen"' in page.text and "Next steps" not in page.text
        token = csrf(page.text)
        refused = b.post("/patients/WS-3/advance", data={"csrf": token, "trigger": "reopen"})
        assert refused.status_code in (409, 422) and 'role="alert"' in refused.text
        reopened = b.post(
            "/patients/WS-3/advance", data={"csrf": token, "trigger": "reopen", "reason": "declined in error"}
        )
        assert reopened.status_code == 200 and 'id="state">referred<' in reopened.text
