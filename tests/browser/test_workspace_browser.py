"""The workspace in a real browser (Playwright driving Debian's chromium): one patient from
referral to ablation and follow-up through the pages, with an input error, a refusal, a
correction and a hold; every page checked with axe-core; screenshots saved (and, with
PATHWAY_SCREENSHOTS=DIR, kept there: the README's come from this test)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.service.conftest import Server, make_server

playwright_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if not CHROMIUM:
    if os.environ.get("PATHWAY_REQUIRE_CHROMIUM") == "1":
        raise RuntimeError("PATHWAY_REQUIRE_CHROMIUM=1 but no chromium on PATH (apt-get install chromium)")
    pytest.skip("no chromium on PATH", allow_module_level=True)

PASSWORD = "a long enough password"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("browser")
    server = make_server(f"sqlite:///{tmp / 'pathway.db'}", tmp)
    with server.clinic() as clinic:
        clinic.identities.set_password("mara", PASSWORD)
        clinic.enroll(
            "MRN-2001",
            "cervical-neurotomy",
            at="2026-06-01",
            name="Ada Example",
            actor="cora",
            role="coordinator",
        )
        for i in range(3):
            clinic.enroll(
                f"MRN-10{i}",
                "cervical-neurotomy",
                at=f"2026-0{i + 3}-0{i + 2}",
                actor="cora",
                role="coordinator",
            )
    yield server
    server.stop()


@pytest.fixture
def page(site: Server, tmp_path: Path) -> Iterator[object]:
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=site.url)
        yield context.new_page()
        context.close()
        browser.close()


def shot(page: object, name: str, tmp_path: Path) -> None:
    target = tmp_path / f"{name}.png"
    page.screenshot(path=str(target), full_page=True)  # type: ignore[attr-defined]
    keep = os.environ.get("PATHWAY_SCREENSHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(target, Path(keep) / target.name)


def accessible(page: object) -> None:
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    serious = [v for v in results.response["violations"] if v.get("impact") in ("serious", "critical")]
    assert not serious, [(v["id"], v["help"], [n["target"] for n in v["nodes"][:3]]) for v in serious]


def step(page: object, trigger: str, at: str, reason: str | None = None) -> None:
    if reason is not None:
        page.fill(f"#reason-{trigger}", reason)  # type: ignore[attr-defined]
    page.fill(f"#at-{trigger}", at)  # type: ignore[attr-defined]
    page.click(f"#step-{trigger}")  # type: ignore[attr-defined]


def record(page: object, kind: str, at: str, values: dict[str, object]) -> None:
    p: object = page
    if not p.is_visible(f"#record-{kind}"):  # type: ignore[attr-defined]
        p.click(f"#kind-{kind} summary")  # type: ignore[attr-defined]
    for field, value in values.items():
        selector = f"#{kind}-{field}"
        tag = p.eval_on_selector(selector, "e => e.tagName")  # type: ignore[attr-defined]
        if tag == "SELECT":
            p.select_option(selector, value if isinstance(value, list) else str(value))  # type: ignore[attr-defined]
        else:
            p.fill(selector, str(value))  # type: ignore[attr-defined]
    p.fill(f"#{kind}-at", at)  # type: ignore[attr-defined]
    p.click(f"#record-{kind}")  # type: ignore[attr-defined]


def state(page: object) -> str:
    return str(page.inner_text("#state"))  # type: ignore[attr-defined]


def test_a_patient_from_referral_to_follow_up_in_the_browser(
    site: Server, page: object, tmp_path: Path
) -> None:
    p: object = page
    p.goto("/")  # type: ignore[attr-defined]
    assert p.url.endswith("/signin")  # type: ignore[attr-defined]
    accessible(p)
    p.fill("#name", "mara")  # type: ignore[attr-defined]
    p.fill("#password", "wrong password here")  # type: ignore[attr-defined]
    p.click("button[type=submit]")  # type: ignore[attr-defined]
    assert "wrong password" in p.inner_text("#signin-error")  # type: ignore[attr-defined]
    p.fill("#name", "mara")  # type: ignore[attr-defined]
    p.fill("#password", PASSWORD)  # type: ignore[attr-defined]
    p.select_option("#role", "physician")  # type: ignore[attr-defined]
    p.click("button[type=submit]")  # type: ignore[attr-defined]
    assert "Worklist" in p.inner_text("h1")  # type: ignore[attr-defined]
    accessible(p)
    shot(p, "worklist", tmp_path)

    p.click("text=MRN-2001")  # type: ignore[attr-defined]
    assert state(p) == "referred"
    step(p, "start_evaluation", "2026-06-02")
    assert state(p) == "evaluation"
    # An input error the server finds (the browser checks ranges itself): a pain onset
    # after the observation; the message is beside the field, and nothing is stored.
    record(p, "baseline", "2026-06-02", {"onset_date": "2026-08-01", "nrs": 7, "ndi": 20,
                                         "axial_predominant": "true", "radiculopathy": "none"})  # fmt: skip
    assert "onset_date" in p.inner_text(".field-error")  # type: ignore[attr-defined]
    assert "None yet." in p.inner_text("#obs-h + table")  # type: ignore[attr-defined]
    record(p, "baseline", "2026-06-02", {"onset_date": "2025-01-01"})
    assert "recorded baseline" in p.inner_text("#done")  # type: ignore[attr-defined]
    record(p, "conservative_care", "2026-06-02", {"modality": "exercise", "weeks": 2, "outcome": "failed"})
    # A refusal said before it is tried: two weeks of conservative care is too little.
    assert "below the 6-week" in p.inner_text("#why-schedule_blocks")  # type: ignore[attr-defined]
    step(p, "schedule_blocks", "2026-06-03")  # tried anyway: refused, nothing changes
    assert "below the 6-week" in p.inner_text("#error")  # type: ignore[attr-defined]
    assert state(p) == "evaluation"
    # A correction: the weeks were wrong; marked entered in error and recorded again.
    row = p.locator("tr", has_text="conservative_care").first  # type: ignore[attr-defined]
    row.locator("input[name=reason]").fill("8 weeks, not 2")
    row.locator("button").click()
    assert "entered in error" in p.inner_text("#obs-h + table")  # type: ignore[attr-defined]
    record(p, "conservative_care", "2026-06-02", {"modality": "exercise", "weeks": 8, "outcome": "failed"})
    # A hold, refused without a reason, then held with one and resumed.
    step(p, "hold", "2026-06-03")
    assert "needs a reason" in p.inner_text("#error")  # type: ignore[attr-defined]
    step(p, "hold", "2026-06-03", reason="patient travelling")
    assert state(p) == "on_hold"
    step(p, "resume", "2026-06-04")
    assert state(p) == "evaluation"
    accessible(p)
    shot(p, "patient", tmp_path)

    step(p, "schedule_blocks", "2026-06-05")
    assert state(p) == "diagnostic_block"
    block = {"side": "right", "levels": ["C4-5"], "guidance": "fluoroscopy", "sedation": "none",
             "pre_nrs": 8, "post_nrs": 1}  # fmt: skip
    record(p, "block", "2026-06-10", {**block, "agent": "lidocaine", "relief_hours": 2})
    record(p, "block", "2026-06-25", {**block, "agent": "bupivacaine", "relief_hours": 6})
    step(p, "approve_ablation", "2026-06-26")
    assert state(p) == "ablation"
    record(p, "safety", "2026-07-01", {"anticoagulant": "false", "anticoagulant_plan": "false",
                                       "implanted_device": "none", "device_plan": "false",
                                       "pregnant": "false", "site_infection": "false"})  # fmt: skip
    record(p, "ablation", "2026-07-01", {"side": "right", "levels": ["C4-5"], "technique": "thermal",
                                         "guidance": "fluoroscopy"})  # fmt: skip
    step(p, "perform_ablation", "2026-07-01")
    assert state(p) == "recovery"
    step(p, "begin_follow_up", "2026-07-25")
    assert state(p) == "follow_up"
    record(p, "follow_up", "2026-10-05", {"nrs": 2, "ndi": 8, "pgic": 6})
    assert "recorded follow_up" in p.inner_text("#done")  # type: ignore[attr-defined]
    accessible(p)
    shot(p, "patient-follow-up", tmp_path)

    p.goto("/manager")  # type: ignore[attr-defined]
    assert "Outcomes" in p.content()  # type: ignore[attr-defined]
    with site.clinic() as clinic:
        events = clinic.history("MRN-2001")
        assert [e.trigger for e in events][-3:] == ["approve_ablation", "perform_ablation", "begin_follow_up"]
        assert {e.actor for e in events[1:]} == {"mara"}
        assert any(a["what"] == "workspace patient" for a in clinic.identities.accesses("MRN-2001"))
    assert (tmp_path / "worklist.png").stat().st_size > 10_000
