"""The bulk writer behind `import referrals`: what it writes is what `enroll` writes, and the
ids it allocates itself never collide with a concurrent writer's."""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from pathway import Clinic
from pathway.interop import referrals
from pathway.store import bulk, rows

PATHWAY = "cervical-neurotomy"
ACTOR = 'Dr. "Ünï" \\ Lee 日本'  # what json.dumps escapes (an actor is one line: no tab or control)


def write(tmp_path: Path, lines: list[str], name: str = "referrals.csv") -> Path:
    path = tmp_path / name
    path.write_text("patient,referred_at,pathway,profile,name\n" + "".join(f"{line}\n" for line in lines))
    return path


def table(clinic: Clinic, sql: str) -> list[dict[str, Any]]:
    with clinic.store.read() as tx:
        return [dict(row._mapping) for row in tx.conn.execute(text(sql))]


def test_an_imported_enrollment_is_written_exactly_as_enroll_writes_it(db_url: str, tmp_path: Path) -> None:
    with Clinic.open(db_url, actor=ACTOR, role="coordinator") as clinic:
        clinic.enroll("E1", PATHWAY, at="2026-01-05T09:30:00.250+01:00", name="Ann Example")
        path = write(tmp_path, ["I1,2026-01-05T09:30:00.250+01:00,cervical-neurotomy,,Ann Example"])
        assert clinic.import_referrals(path).imported == 1

        enrolled, imported = (clinic.status(p).to_dict() for p in ("E1", "I1"))
        for key in ("patient", "enrollment_id"):
            del enrolled[key], imported[key]
        assert imported == enrolled

        enrollments = table(clinic, "SELECT * FROM enrollments ORDER BY id")
        events = table(clinic, "SELECT * FROM events ORDER BY id")
        for rows, ignore in (
            # The chain's hashes cover the patient and the recorded time: they differ
            # (pathway audit verify checks each enrollment's chain).
            (enrollments, ("id", "patient_id", "chain_head")),
            (events, ("id", "enrollment_id", "recorded_at", "hash")),
        ):
            for row in rows:
                for key in ignore:
                    del row[key]
        assert enrollments[1] == enrollments[0]
        payloads = [row.pop("payload") for row in events]
        assert [json.loads(p) if isinstance(p, str) else p for p in payloads] == [
            {"profile": "medicare"},
            {"profile": "medicare", "source": "import"},
        ]
        assert events[1] == events[0]

        messages = [row["message"] for row in clinic.outbox()]
        assert [list(m) for m in messages[1:]] == [list(messages[0])]  # the same keys, in order
        varying = ("id", "enrollment", "patient", "recorded_at")
        assert {k: v for k, v in messages[1].items() if k not in varying} == {
            k: v for k, v in messages[0].items() if k not in varying
        }
        assert messages[1]["enrollment"] == clinic.status("I1").enrollment_id
        assert uuid.UUID(messages[1]["id"]).version == 4
        if clinic.store.backend == "sqlite":
            # The stored text is json.dumps of the message, as enroll stores it.
            for row in table(clinic, "SELECT payload FROM outbox"):
                assert row["payload"] == json.dumps(json.loads(row["payload"]))


def test_subscribers_get_each_imported_message_after_its_batch_commits(
    clinic: Clinic, tmp_path: Path
) -> None:
    received: list[dict[str, Any]] = []
    clinic.subscribe(received.append)
    clinic.import_referrals(write(tmp_path, ["S1,2026-01-05,,,", "S2,2026-01-06,,,"]), pathway=PATHWAY)
    assert received == [row["message"] for row in clinic.outbox()]


def test_a_known_patient_gets_the_name_given_as_enroll_would_set_it(clinic: Clinic, tmp_path: Path) -> None:
    clinic.enroll("K1", "lumbar-neurotomy", at="2026-01-01", name="Old Name")
    clinic.enroll("K2", "lumbar-neurotomy", at="2026-01-01", name="Kept Name")
    report = clinic.import_referrals(
        write(tmp_path, ["K1,2026-01-05,cervical-neurotomy,,New Name", "K2,2026-01-05,cervical-neurotomy,,"])
    )
    assert report.imported == 2
    assert clinic.status("K1", pathway=PATHWAY).name == "New Name"
    assert clinic.status("K2", pathway=PATHWAY).name == "Kept Name"


def test_a_name_with_control_characters_is_refused_as_enroll_refuses_it(
    clinic: Clinic, tmp_path: Path
) -> None:
    report = clinic.import_referrals(write(tmp_path, ["C1,2026-01-05,,,Bad\x07Name"]), pathway=PATHWAY)
    assert report.problems == ["line 2: name: contains control characters"]


def test_a_row_after_a_blank_line_is_reported_by_its_own_line_number(clinic: Clinic, tmp_path: Path) -> None:
    report = clinic.import_referrals(
        write(tmp_path, ["B1,2026-01-05,,,", "", "bad id,2026-01-05,,,"]), pathway=PATHWAY
    )
    assert report.rows == 2
    assert [p.split(": ")[0:2] for p in report.problems] == [["line 4", "patient"]]


def test_rows_given_as_mappings_are_validated_the_same(clinic: Clinic) -> None:
    rows = [
        (2, {"patient": "M1", "referred_at": "2026-01-05"}),
        (3, {"patient": "M2", "referred_at": "someday", "pathway": PATHWAY}),
        (4, {"patient": "M3", "referred_at": "2026-01-05", "__extra__": "1"}),
    ]
    report = clinic.import_referrals(rows, pathway=PATHWAY, skip_invalid=True)
    assert (report.rows, report.imported) == (3, 1)
    assert report.problems[0].startswith("line 3: referred_at:")
    assert report.problems[1] == "line 4: more values than columns"


def test_ids_are_allocated_only_while_the_write_lock_is_held(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = sqlite_url.removeprefix("sqlite:///")
    attempts: list[str] = []
    allocate = rows.RowWriter.allocate

    def allocate_then_try_to_write(self: Any, table: str, count: int) -> Any:
        ids = allocate(self, table, count)
        other = sqlite3.connect(database, timeout=0, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            other.execute("ROLLBACK")
            attempts.append(f"{table}: another writer got in")
        except sqlite3.OperationalError as exc:
            attempts.append(f"{table}: {exc}")
        finally:
            other.close()
        return ids

    monkeypatch.setattr(rows.RowWriter, "allocate", allocate_then_try_to_write)
    with Clinic.open(sqlite_url, role="coordinator") as clinic:
        clinic.enroll("A0", PATHWAY, at="2026-01-01")
        assert (
            clinic.import_referrals(
                write(tmp_path, ["A1,2026-01-05,,,", "A2,2026-01-05,,,"]), pathway=PATHWAY
            ).imported
            == 2
        )
    assert attempts == ["patients: database is locked", "enrollments: database is locked"]


def test_enrolls_during_an_import_never_collide_with_its_ids(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(referrals, "BATCH", 50)  # many transactions, so enrolls land between them
    path = write(tmp_path, [f"B{i:04d},2026-01-05,,," for i in range(2000)])
    outcome: list[Any] = []
    with (
        Clinic.open(db_url, role="coordinator") as importer,
        Clinic.open(db_url, role="coordinator") as clinic,
    ):
        thread = threading.Thread(
            target=lambda: outcome.append(importer.import_referrals(path, pathway=PATHWAY))
        )
        thread.start()
        enrolled = 0
        while thread.is_alive() or enrolled < 5:
            clinic.enroll(f"C{enrolled:04d}", PATHWAY, at="2026-01-06")
            enrolled += 1
        thread.join()
        assert outcome[0].imported == 2000
        whole = table(
            clinic,
            "SELECT p.identifier, n.id, n.last_seq, "
            "count(DISTINCT e.id) AS events, count(DISTINCT o.id) AS messages "
            "FROM enrollments n JOIN patients p ON p.id = n.patient_id "
            "LEFT JOIN events e ON e.enrollment_id = n.id AND e.seq = 1 "
            "LEFT JOIN outbox o ON o.enrollment_id = n.id "
            "GROUP BY p.identifier, n.id, n.last_seq",
        )
        assert len(whole) == 2000 + enrolled
        assert {(r["last_seq"], r["events"], r["messages"]) for r in whole} == {(1, 1, 1)}
        enrollment_of = {r["identifier"]: r["id"] for r in whole}
        messages = [row["message"] for row in clinic.outbox()]
        assert len(messages) == len(whole)
        assert all(m["enrollment"] == enrollment_of[m["patient"]] for m in messages)


def test_message_ids_are_random_version_4_uuids() -> None:
    texts = bulk.uuid4_texts(5000)
    assert len(set(texts)) == 5000
    for text_ in texts:
        parsed = uuid.UUID(text_)
        assert (str(parsed), parsed.version, parsed.variant) == (text_, 4, uuid.RFC_4122)
