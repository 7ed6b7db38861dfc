"""Break each reliability guarantee on purpose and check that its tests notice (issue 5).

    python bench/sabotage.py [--only 1a 3 ...] [--postgres URL | --no-postgres]
                             [--rev HEAD] [--overlay PATH ...] [--keep] [--list]

For every sabotage below the script extracts the committed tree (`git archive REV`)
into a throwaway directory, applies one small, described change (a text replacement of
a specific snippet in a specific file; a snippet that is not found exactly as often as
expected is an error, so the script fails loudly when the code moves), and runs the
guarantee's tests there with this interpreter:

    python -m pytest -q -x -p no:cacheprovider -m "not postgres" TESTS     (SQLite)
    python -m pytest -q -x -p no:cacheprovider -m postgres TESTS           (PostgreSQL)

with the copy as the working directory and first on PYTHONPATH (the dev venv has
/work/main installed editable; the script checks that `pathway`, `cli` and `workflows`
are imported from the copy). The same tests also run once in an unbroken copy. A
guarantee is guarded when its tests pass unbroken and FAIL under the sabotage.

Hypothesis runs with the derandomized "ci" profile (CI=1), so a run is repeatable.
PostgreSQL variants run where the tests are parametrized over both backends, with
PATHWAY_TEST_DATABASE_URL (or --postgres) naming the server.

Exit status: 0 when every sabotage was caught (and every unbroken run passed), 1 otherwise.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUN_TIMEOUT = 900  # seconds per pytest run; a hang counts as a failure to report


@dataclass(frozen=True)
class Edit:
    """Replace `old` with `new` in `path` (relative to the repository); `old` must occur `count` times."""

    path: str
    old: str
    new: str
    count: int = 1


@dataclass(frozen=True)
class Sabotage:
    key: str
    item: str
    title: str  # one line for the table
    why: str  # which promise this breaks, and how
    edits: tuple[Edit, ...]
    tests: tuple[str, ...]  # pytest targets, each run on its own with -x
    backends: tuple[str, ...] = ("sqlite",)
    control: bool = False  # not a break of the promise: its tests should still pass


INTEGRATION = "tests/integration/"
CONCURRENCY = INTEGRATION + "test_concurrency.py"
CONTRACT = INTEGRATION + "test_store_contract.py::"
STALE_WRITER = CONTRACT + "test_two_writers_on_one_enrollment_one_wins_the_other_conflicts"
TAMPER = CONTRACT + "test_the_database_refuses_tampering_with_events_and_observations"
CRASH = INTEGRATION + "test_crash_safety.py::"
CRASH_IMPORT = CRASH + "test_killing_an_import_leaves_whole_batches_and_a_rerun_completes_it"
CRASH_SIMULATE = CRASH + "test_killing_a_simulation_never_leaves_half_a_command"
EXTRA = INTEGRATION + "test_guarantees_extra.py"
KILL_EACH = EXTRA + "::test_a_kill_before_any_statement_leaves_only_whole_commands"
EVERY_FIELD = EXTRA + "::test_every_field_turns_any_value_into_a_value_or_a_clear_error"
ROLES = "tests/unit/test_roles.py"
HOSTILE = INTEGRATION + "test_hostile_input.py"
EXPORT = INTEGRATION + "test_export.py"
PASSWORD = INTEGRATION + "test_schema.py::test_a_postgres_password_never_appears_in_errors"
AUDIT = INTEGRATION + "test_audit_trail.py::"
RACES = INTEGRATION + "test_races_and_faults.py::"

REPOSITORY = "pathway/store/repository.py"
TX = "pathway/store/tx.py"
STATEMENTS = "pathway/store/statements.py"
ENROLLING = "pathway/service/enrolling.py"
DATABASE = "pathway/store/database.py"
MIGRATION = "pathway/store/migrations/versions/0001_initial.py"
CORRECTION_AUDIT = "pathway/store/migrations/versions/0004_correction_audit.py"
AUDIT_CHAIN = "pathway/store/migrations/versions/0005_audit_chain.py"
CLINIC = "pathway/clinic.py"
COMMANDS = "pathway/service/commands.py"
FIELDS = "pathway/domain/fields.py"

SABOTAGES: tuple[Sabotage, ...] = (
    # 1 -- concurrency ------------------------------------------------------------------------
    Sabotage(
        "1a",
        "1 concurrency",
        "no optimistic version check in the enrollment UPDATEs",
        "save_state and touch update the enrollment whatever version it has now, so a writer "
        "holding a stale read overwrites a concurrent change instead of getting ConcurrencyError",
        (
            Edit(
                STATEMENTS,
                'enrollments.c.version == bindparam("b_expected"),',
                '(enrollments.c.version == bindparam("b_expected"))'
                " | (enrollments.c.id == enrollments.c.id),",
                count=2,
            ),
        ),
        (CONCURRENCY, STALE_WRITER, EXTRA + "::test_writers_that_meet_lose_nothing_and_every_change_counts"),
        ("sqlite", "postgresql"),
    ),
    Sabotage(
        "1b",
        "1 concurrency",
        "changes ignore expected_version (a stale read is not a conflict)",
        "advance, record and correct no longer compare the version the caller read with the stored one, so a "
        "decision taken on a stale status is applied to whatever the enrollment has become",
        (
            Edit(
                COMMANDS,
                "    if expected_version is not None and enrollment.version != expected_version:\n"
                "        raise",
                "    if False:  # SABOTAGE\n        raise",
            ),
        ),
        (CONCURRENCY, EXTRA + "::test_writers_that_meet_lose_nothing_and_every_change_counts"),
        ("sqlite", "postgresql"),
    ),
    Sabotage(
        "1c",
        "1 concurrency",
        "the event log no longer replays to the stored state",
        "a resume's event records the held-from state as its from_state instead of on_hold, so "
        "replaying the log does not give the stored state (the invariant the test checks)",
        (
            Edit(
                COMMANDS,
                "                from_state=enrollment.state,\n                to_state=fired.dest,",
                "                from_state=enrollment.held_from or enrollment.state,  # SABOTAGE\n"
                "                to_state=fired.dest,",
            ),
        ),
        (CONCURRENCY,),
        ("sqlite", "postgresql"),
    ),
    Sabotage(
        "1d",
        "1 concurrency",
        "SQLite writers BEGIN DEFERRED (control: not a break)",
        "a writer takes the lock only at its first write; SQLite then refuses to upgrade a stale "
        "snapshot (SQLITE_BUSY_SNAPSHOT -> ConcurrencyError), so nothing is lost, there are only "
        "more conflicts: the promise holds and the test should pass",
        (
            Edit(
                DATABASE,
                'connection.get_execution_options().get("sqlite_begin", "IMMEDIATE")',
                '"DEFERRED"  # SABOTAGE',
            ),
        ),
        (CONCURRENCY,),
        control=True,
    ),
    # 2 -- crash safety -----------------------------------------------------------------------
    Sabotage(
        "2a",
        "2 crash safety",
        "SQLite without transactions (every statement commits alone)",
        "the BEGIN the engine emits for each unit of work is dropped, so an import batch commits "
        "its patients, enrollments, events and outbox rows statement by statement; a kill "
        "between them leaves enrollments without their event or outbox message",
        (
            Edit(
                DATABASE,
                'connection.connection.driver_connection.execute(f"BEGIN {mode}")',
                "pass  # SABOTAGE: no BEGIN, autocommit",
            ),
        ),
        (CRASH_IMPORT, KILL_EACH + "[import]"),
    ),
    Sabotage(
        "2b",
        "2 crash safety",
        "outbox rows committed in a second transaction after the change",
        "every write transaction commits its state change and event, then writes the outbox "
        "rows in a transaction of their own (the dual-write bug); a kill between the two "
        "leaves events without their messages",
        (
            Edit(
                TX,
                "        self.messages: list[dict[str, Any]] = []",
                "        self.later: list[Any] = []  # SABOTAGE: outbox writes after the commit\n"
                "        self.messages: list[dict[str, Any]] = []",
            ),
            Edit(
                TX,
                '        self._execute_write("insert_outbox", q.INSERT_OUTBOX, row._asdict())\n',
                "        self.later.append(  # SABOTAGE\n"
                '            lambda: self._execute_write("insert_outbox", q.INSERT_OUTBOX, row._asdict())\n'
                "        )\n",
            ),
            Edit(
                REPOSITORY,
                "                tx = Tx(conn)\n                yield tx\n",
                "                tx = Tx(conn)\n                yield tx\n"
                "            with conn.begin():  # SABOTAGE: a second transaction\n"
                "                for write_later in tx.later:\n"
                "                    write_later()\n",
            ),
        ),
        (CRASH_SIMULATE, KILL_EACH + "[simulate-one-by-one]"),
    ),
    # 3 -- audit trail ------------------------------------------------------------------------
    Sabotage(
        "3a",
        "3 audit trail",
        "no append-only triggers created by the migration",
        "migration 0001 creates the tables but none of the triggers, so raw SQL can UPDATE and "
        "DELETE events and observations",
        (
            Edit(
                MIGRATION,
                "    for statement in statements:\n        op.execute(statement)\n",
                "    for statement in statements:\n"
                '        if "CREATE TRIGGER" not in statement:  # SABOTAGE: functions only\n'
                "            op.execute(statement)\n",
            ),
        ),
        (TAMPER,),
        ("sqlite", "postgresql"),
    ),
    Sabotage(
        "3b",
        "3 audit trail",
        "observations' UPDATE trigger disabled",
        "the trigger that allows only marking entered-in-error never fires (SQLite: WHEN 0; "
        "PostgreSQL: not created), so an observation's data can be rewritten",
        (
            Edit(
                MIGRATION,
                "BEFORE UPDATE ON observations\n       WHEN NOT (",
                "BEFORE UPDATE ON observations\n       WHEN 0 AND NOT (  -- SABOTAGE",
            ),
            # Revisions 0004 and 0005 redefine the SQLite trigger: the same there.
            Edit(
                CORRECTION_AUDIT,
                "BEFORE UPDATE ON observations\n       WHEN NOT (",
                "BEFORE UPDATE ON observations\n       WHEN 0 AND NOT (  -- SABOTAGE",
            ),
            Edit(
                AUDIT_CHAIN,
                "BEFORE UPDATE ON observations\n       WHEN NOT (",
                "BEFORE UPDATE ON observations\n       WHEN 0 AND NOT (  -- SABOTAGE",
            ),
            Edit(
                MIGRATION,
                '"""CREATE TRIGGER observations_only_mark_error BEFORE UPDATE ON observations\n'
                '       FOR EACH ROW EXECUTE FUNCTION pathway_observation_mark_error_only()"""',
                '"""SELECT 1  -- SABOTAGE"""',
            ),
        ),
        (TAMPER,),
        ("sqlite", "postgresql"),
    ),
    Sabotage(
        "3c",
        "3 audit trail",
        "a correction can be re-marked (no 'once')",
        "the trigger no longer requires the row to be unmarked, so raw SQL can rewrite an "
        "entered-in-error mark's reason, actor and time after the fact",
        (
            Edit(
                MIGRATION,
                "OLD.entered_in_error = 0 AND NEW.entered_in_error = 1",
                "NEW.entered_in_error = 1  /* SABOTAGE */",
            ),
            Edit(
                MIGRATION,
                "IF OLD.entered_in_error OR NOT NEW.entered_in_error",
                "IF NOT NEW.entered_in_error  -- SABOTAGE",
            ),
            # Revisions 0004 and 0005 redefine both: the same there.
            Edit(
                CORRECTION_AUDIT,
                "OLD.entered_in_error = 0 AND NEW.entered_in_error = 1",
                "NEW.entered_in_error = 1  /* SABOTAGE */",
            ),
            Edit(
                CORRECTION_AUDIT,
                "IF OLD.entered_in_error OR NOT NEW.entered_in_error",
                "IF NOT NEW.entered_in_error  -- SABOTAGE",
            ),
            Edit(
                AUDIT_CHAIN,
                "OLD.entered_in_error = 0 AND NEW.entered_in_error = 1",
                "NEW.entered_in_error = 1  /* SABOTAGE */",
            ),
            Edit(
                AUDIT_CHAIN,
                "IF OLD.entered_in_error OR NOT NEW.entered_in_error",
                "IF NOT NEW.entered_in_error  -- SABOTAGE",
            ),
        ),
        (TAMPER, EXTRA + "::test_a_correction_is_final_even_in_raw_sql"),
        ("sqlite", "postgresql"),
    ),
    Sabotage(
        "3d",
        "3 audit trail",
        "PostgreSQL: TRUNCATE on events allowed",
        "the statement-level trigger refusing TRUNCATE events is not created, so the whole log "
        "can be emptied in one statement",
        (
            Edit(
                MIGRATION,
                '"""CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events\n'
                '       FOR EACH STATEMENT EXECUTE FUNCTION pathway_refuse_change()"""',
                '"""SELECT 1  -- SABOTAGE"""',
            ),
        ),
        (TAMPER, EXTRA + "::test_postgresql_refuses_truncating_the_log"),
        ("postgresql",),
    ),
    # 4 -- roles ------------------------------------------------------------------------------
    Sabotage(
        "4a",
        "4 roles",
        "the machine skips the role check on transitions",
        "PathwayMachine.fire no longer refuses a role the transition does not name",
        (
            Edit(
                "pathway/domain/machine.py",
                "        if role not in roles:\n            raise RoleRefused(\n"
                '                f"cannot {trigger} for {describe}',
                "        if False:  # SABOTAGE\n            raise RoleRefused(\n"
                '                f"cannot {trigger} for {describe}',
            ),
        ),
        (ROLES,),
    ),
    Sabotage(
        "4b",
        "4 roles",
        "record skips the observation kind's role check",
        "Clinic.record stores a kind for any role",
        (Edit(COMMANDS, "            if role not in spec.roles:\n", "            if False:  # SABOTAGE\n"),),
        (ROLES,),
    ),
    Sabotage(
        "4c",
        "4 roles",
        "correct skips the role check",
        "Clinic.correct lets any role mark an observation entered-in-error (a coordinator "
        "retracting a physician's baseline)",
        (
            Edit(
                COMMANDS,
                "            if spec is not None and role not in spec.roles:\n",
                "            if False:  # SABOTAGE\n",
            ),
        ),
        (ROLES, EXTRA + "::test_correcting_needs_a_role_of_the_kind"),
    ),
    Sabotage(
        "4d",
        "4 roles",
        "enroll skips the pathway's role check",
        "Clinic.enroll enrolls as any role, even one the pathway does not name",
        (
            Edit(
                ENROLLING,
                "        if role not in workflow.roles:\n            raise RoleRefused(\n"
                '                f"cannot enroll in {pathway} as {role}',
                "        if False:  # SABOTAGE\n            raise RoleRefused(\n"
                '                f"cannot enroll in {pathway} as {role}',
            ),
        ),
        (ROLES, EXTRA + "::test_enrolling_needs_a_role_of_the_pathway"),
    ),
    # 5 -- hostile input ----------------------------------------------------------------------
    Sabotage(
        "5a",
        "5 hostile input",
        "int fields: int() ValueError escapes (no pattern check)",
        "fields._parse converts text with int() without checking it first, so 'abc' or '7.5' "
        "raises ValueError instead of InvalidInput (a traceback at the CLI)",
        (
            Edit(
                FIELDS,
                "            if not _INT.match(value.strip()):\n",
                "            if False:\n",
            ),
        ),
        (HOSTILE,),
    ),
    Sabotage(
        "5b",
        "5 hostile input",
        "date fields: ValueError not wrapped in PathwayError",
        "timeutil.parse_date (every date field and --at) lets date.fromisoformat's ValueError "
        "escape for a date that does not exist (2026-02-30)",
        (
            Edit(
                "pathway/domain/timeutil.py",
                "        return date.fromisoformat(text)\n    except ValueError:\n",
                "        return date.fromisoformat(text)\n    except KeyError:  # SABOTAGE\n",
            ),
        ),
        (HOSTILE, EVERY_FIELD),
    ),
    Sabotage(
        "5c",
        "5 hostile input",
        "the CLI re-raises unexpected errors (a traceback)",
        "PathwayGroup.invoke re-raises every non-PathwayError as if PATHWAY_DEBUG were set, so any "
        "internal error reaches the user as a traceback",
        (Edit("cli/app.py", 'if os.environ.get("PATHWAY_DEBUG"):', "if True:  # SABOTAGE"),),
        (HOSTILE, EXTRA + "::test_an_internal_error_is_one_line_without_a_traceback"),
    ),
    Sabotage(
        "5d",
        "5 hostile input",
        "a CSV with bad rows is imported in part",
        "Clinic.import_referrals writes the valid rows even when others are invalid (the promise: "
        "nothing is imported while any row is bad, unless --skip-invalid)",
        (Edit(CLINIC, "        if problems and not skip_invalid:\n", "        if False:  # SABOTAGE\n"),),
        (HOSTILE, EXTRA + "::test_a_csv_with_any_bad_row_changes_nothing"),
    ),
    Sabotage(
        "5e",
        "5 hostile input",
        "FHIR import: RecursionError from deeply nested JSON escapes",
        "pathway.interop.fhir.import_file no longer turns json's RecursionError into InvalidInput, so a "
        "deeply nested file ends in 'internal error' instead of a clear message",
        (
            Edit(
                "pathway/interop/fhir/referral.py",
                "    except RecursionError:\n"
                '        raise InvalidInput(f"{path}: not a FHIR resource: JSON nested too deeply")',
                "    except ZeroDivisionError:  # SABOTAGE\n"
                '        raise InvalidInput(f"{path}: not a FHIR resource: JSON nested too deeply")',
            ),
        ),
        (INTEGRATION + "test_hostile_fhir.py::test_a_file_that_is_not_json_is_refused_clearly",),
    ),
    # 6 -- privacy ----------------------------------------------------------------------------
    Sabotage(
        "6a",
        "6 privacy",
        "--pseudonymize keeps patient identifiers",
        "export.event_rows writes the real identifier even with a pseudonym key",
        (
            Edit(
                "pathway/interop/event_export.py",
                '"patient": pseudonym(key, r.patient) if key else r.patient,',
                '"patient": r.patient,  # SABOTAGE',
            ),
        ),
        (EXPORT,),
        ("sqlite", "postgresql"),
    ),
    Sabotage(
        "6b",
        "6 privacy",
        "--pseudonymize keeps free-text reasons",
        "export.event_rows writes reasons (which may name people) even with a pseudonym key",
        (
            Edit(
                "pathway/interop/event_export.py",
                '"reason": None if key else r.reason,',
                '"reason": r.reason,  # SABOTAGE',
            ),
        ),
        (EXPORT,),
        ("sqlite", "postgresql"),
    ),
    Sabotage(
        "6c",
        "6 privacy",
        "'cannot open' error shows the database password",
        "opening the database renders the engine URL with its password in the error message",
        (
            Edit(
                DATABASE,
                'raise StoreError(f"cannot open {redact(str(engine.url))}: {_one_line(exc.orig)}")',
                'raise StoreError(f"cannot open {engine.url.render_as_string(hide_password=False)}: '
                '{_one_line(exc.orig)}")  # SABOTAGE',
            ),
        ),
        (PASSWORD, EXTRA + "::test_the_cli_never_prints_a_database_password"),
    ),
    Sabotage(
        "6d",
        "6 privacy",
        "redact() leaves the password in",
        "database.redact (used for every message naming a database) no longer hides the password",
        (Edit(DATABASE, "render_as_string(hide_password=True)", "render_as_string(hide_password=False)"),),
        (PASSWORD, EXTRA + "::test_the_cli_never_prints_a_database_password"),
    ),
    Sabotage(
        "6e",
        "6 privacy",
        "a field validation error echoes the value",
        "fields._problem names the value given, e.g. 'nrs: 4711 is not allowed', so error "
        "messages and logs carry observation values",
        (
            Edit(
                FIELDS,
                'f"{spec.name}: the value given is not allowed; expected {spec.describe()}"',
                'f"{spec.name}: {value!r} is not allowed; expected {spec.describe()}"  # SABOTAGE',
            ),
        ),
        (EXTRA + "::test_invalid_observation_values_are_not_echoed",),
    ),
    Sabotage(
        "6f",
        "6 privacy",
        "SQL built by string formatting (display name)",
        "Tx.set_display_name interpolates the name into the SQL text instead of binding it, so a "
        "quote in a name breaks (or rewrites) the statement",
        (
            Edit(
                TX,
                "self.conn.execute(\n"
                "            update(patients).where(patients.c.id == patient_id)"
                ".values(display_name=display_name)\n",
                "self.conn.exec_driver_sql(  # SABOTAGE\n"
                "            f\"UPDATE patients SET display_name = '{display_name}' \"\n"
                '            f"WHERE id = {patient_id}"\n',
            ),
        ),
        (EXTRA + "::test_free_text_with_quotes_is_stored_exactly",),
        ("sqlite", "postgresql"),
    ),
    # 7 -- the tamper-evident audit trail and the races of issue 14 -----------------------------
    Sabotage(
        "7a",
        "7 tamper evidence",
        "audit verify does not compare the hash chain",
        "check_chain no longer recomputes each entry's hash from its content and the previous "
        "hash, so a row edited while the triggers were off (or in replica mode) passes verify",
        (
            Edit(
                "pathway/service/audit.py",
                "        if chain.link(previous, entry) != stored:\n",
                "        if False:  # SABOTAGE\n",
            ),
        ),
        (
            AUDIT + "test_a_forged_event_is_found",
            AUDIT + "test_postgresql_replica_mode_is_found_by_the_hashes",
        ),
        ("sqlite", "postgresql"),
    ),
    Sabotage(
        "7b",
        "7 tamper evidence",
        "SQLite: INSERT OR REPLACE into events allowed",
        "the events_no_replace trigger never fires, so REPLACE deletes and rewrites an event "
        "without the delete trigger ever running",
        (
            Edit(
                AUDIT_CHAIN,
                "       WHEN EXISTS (SELECT 1 FROM events WHERE id = NEW.id)\n"
                "         OR EXISTS (SELECT 1 FROM events WHERE enrollment_id",
                "       WHEN 0 AND EXISTS (SELECT 1 FROM events WHERE id = NEW.id)  -- SABOTAGE\n"
                "         AND EXISTS (SELECT 1 FROM events WHERE enrollment_id",
            ),
        ),
        (AUDIT + "test_sqlite_refuses_insert_or_replace",),
    ),
    Sabotage(
        "7c",
        "7 tamper evidence",
        "PostgreSQL: the service role may UPDATE, DELETE and TRUNCATE every table",
        "db create-role grants ALL on the tables, so a service connecting as it can empty the "
        "log or rewrite rows with only the triggers in the way",
        (
            Edit(
                "pathway/store/roles.py",
                """f'GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA public TO "{name}"',""",
                """f'GRANT ALL ON ALL TABLES IN SCHEMA public TO "{name}"',  # SABOTAGE""",
            ),
        ),
        (AUDIT + "test_the_service_role_cannot_bypass_the_trail",),
        ("postgresql",),
    ),
    Sabotage(
        "7d",
        "7 tamper evidence",
        "SQLite: an enrollment's state may change without its event",
        "the enrollments_follow_events trigger never fires, so raw SQL can move a patient to "
        "another state with nothing in the log",
        (
            Edit(
                AUDIT_CHAIN,
                "BEGIN SELECT RAISE(ABORT, 'an enrollment changes only with the event that changes it'); END",
                "BEGIN SELECT 1 /* SABOTAGE */; END",
            ),
        ),
        (AUDIT + "test_the_database_refuses_changes_without_pathway",),
    ),
    Sabotage(
        "7e",
        "7 races",
        "PostgreSQL: an import that meets another import of the same file is not retried",
        "referrals.write gives up on the first unique-key clash, so the second of two imports "
        "of one file fails (exit 5) instead of skipping what the first enrolled",
        (Edit("pathway/interop/referrals.py", "RETRIES = 3  #", "RETRIES = 1  # SABOTAGE"),),
        (RACES + "test_the_same_file_imported_twice_at_once_enrolls_each_once",),
        ("postgresql",),
    ),
    Sabotage(
        "7f",
        "7 races",
        "a database busy beyond the wait is an internal error",
        "failures.translate no longer recognizes SQLite's 'database is locked', so a user gets "
        "a generic store error (exit 1) instead of 'busy: retry' (exit 5)",
        (
            Edit(
                "pathway/store/failures.py",
                "    if any(busy in lowered for busy in _BUSY):\n",
                "    if False:  # SABOTAGE\n",
            ),
        ),
        (RACES + "test_a_database_locked_longer_than_the_wait_is_busy_exit_5",),
    ),
)


# --- running -----------------------------------------------------------------------------------


def extract(rev: str, overlays: list[str]) -> Path:
    """The tree at `rev` in a new temporary directory (plus any overlaid working-tree files)."""
    target = Path(tempfile.mkdtemp(prefix="sabotage-"))
    archive = subprocess.run(["git", "archive", rev], cwd=ROOT, check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    for path in overlays:
        source = ROOT / path
        (target / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target / path)
    # cli/ and workflows/ are installed as pathway_cli and pathway_workflows; on
    # PYTHONPATH the copy offers them under those names too, ahead of the installed ones.
    for installed, folder in (("pathway_cli", "cli"), ("pathway_workflows", "workflows")):
        (target / installed).symlink_to(folder, target_is_directory=True)
    return target


def apply(copy: Path, edits: tuple[Edit, ...]) -> None:
    for edit in edits:
        path = copy / edit.path
        text = path.read_text(encoding="utf-8")
        found = text.count(edit.old)
        if found != edit.count:
            raise SnippetMoved(f"{edit.path}: expected {edit.count} of {edit.old!r}, found {found}")
        path.write_text(text.replace(edit.old, edit.new), encoding="utf-8")


class SnippetMoved(Exception):
    """The code a sabotage edits is not there as expected: update the sabotage."""


def environment(copy: Path, backend: str, pg_url: str | None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(copy), *filter(None, [env.get("PYTHONPATH")])])
    env["CI"] = "1"  # hypothesis 'ci' profile: derandomized, repeatable
    env.pop("PATHWAY_DEBUG", None)
    env.pop("PATHWAY_DB", None)
    env.pop("PATHWAY_TEST_DATABASE_URL", None)
    if backend == "postgresql":
        assert pg_url
        env["PATHWAY_TEST_DATABASE_URL"] = pg_url
    return env


def check_imports(copy: Path) -> str:
    """Where `pathway`, `cli` and `workflows` come from in the copy: they must be the copy's."""
    probe = (
        "import pathway, pathway_cli.main, pathway_workflows.spine; "
        "print(pathway.__file__, pathway_cli.main.__file__, pathway_workflows.spine.__file__)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=copy,
        env=environment(copy, "sqlite", None),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    strays = [f for f in out if not Path(f).resolve().is_relative_to(copy.resolve())]
    if strays:
        raise SystemExit(f"the copy does not import its own code: {strays}")
    return out[0]


@dataclass
class Outcome:
    status: str  # passed, FAILED, error, no tests, timeout, snippet moved
    seconds: float = 0.0
    failures: list[str] = field(default_factory=list)
    tail: str = ""


def run_tests(copy: Path, test: str, backend: str, pg_url: str | None) -> Outcome:
    marker = "postgres" if backend == "postgresql" else "not postgres"
    command = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "-m", marker, test]
    started = time.monotonic()
    try:
        done = subprocess.run(
            command,
            cwd=copy,
            env=environment(copy, backend, pg_url),
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return Outcome("timeout", time.monotonic() - started)
    seconds = time.monotonic() - started
    output = done.stdout + done.stderr
    failures = [line for line in output.splitlines() if line.startswith(("FAILED ", "ERROR "))]
    status = {0: "passed", 1: "FAILED", 5: "no tests"}.get(done.returncode, f"error (exit {done.returncode})")
    if status == "FAILED" and failures and all(f.startswith("ERROR ") for f in failures):
        status = "error"  # a collection or fixture error is no proof the property is guarded
    return Outcome(status, seconds, failures, "\n".join(output.splitlines()[-15:]))


def short(test: str) -> str:
    path, _, name = test.partition("::")
    return Path(path).name + (f"::{name}" if name else "")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", nargs="*", default=[], help="sabotage keys or item numbers (1a, 3, ...)")
    parser.add_argument("--rev", default="HEAD", help="the committed tree to copy (default HEAD)")
    parser.add_argument(
        "--overlay", nargs="*", default=[], help="working-tree files to copy over the tree (for development)"
    )
    parser.add_argument("--postgres", default=os.environ.get("PATHWAY_TEST_DATABASE_URL"))
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the copies (their paths are printed)")
    parser.add_argument("--list", action="store_true", help="list the sabotages and exit")
    args = parser.parse_args()

    chosen = [s for s in SABOTAGES if not args.only or s.key in args.only or s.key[0] in args.only]
    if args.list:
        for s in chosen:
            print(f"{s.key:3} {s.item:16} {s.title}\n    {s.why}")
            for e in s.edits:
                print(f"    {e.path}: {e.old!r}\n      -> {e.new!r}")
        return 0
    pg_url = None if args.no_postgres else args.postgres
    commit = subprocess.run(
        ["git", "rev-parse", "--short", args.rev], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout.strip()
    print(f"tree: {args.rev} ({commit}){' + ' + ', '.join(args.overlay) if args.overlay else ''}")
    print(f"python: {sys.executable}")
    print(f"postgresql: {'yes' if pg_url else 'no (set PATHWAY_TEST_DATABASE_URL or --postgres)'}\n")

    copies: list[Path] = []
    clean = extract(args.rev, args.overlay)
    copies.append(clean)
    print(f"unbroken copy {clean}: pathway imported from {check_imports(clean)}\n")
    baseline: dict[tuple[str, str], Outcome] = {}
    rows: list[tuple[Sabotage, str, str, Outcome, Outcome]] = []  # sabotage, test, backend, clean, broken
    try:
        for s in chosen:
            backends = [b for b in s.backends if b == "sqlite" or pg_url]
            if not backends:
                print(f"{s.key}: skipped (needs PostgreSQL)")
                continue
            copy = extract(args.rev, args.overlay)
            copies.append(copy)
            try:
                apply(copy, s.edits)
                check_imports(copy)
            except SnippetMoved as exc:
                rows.append((s, "-", "-", Outcome("-"), Outcome("snippet moved")))
                print(f"{s.key}: SNIPPET MOVED: {exc}")
                continue
            for backend in backends:
                for test in s.tests:
                    if (test, backend) not in baseline:
                        baseline[(test, backend)] = run_tests(clean, test, backend, pg_url)
                    unbroken = baseline[(test, backend)]
                    if unbroken.status == "no tests":
                        continue  # e.g. a SQLite-only test in the PostgreSQL run
                    broken = run_tests(copy, test, backend, pg_url)
                    rows.append((s, test, backend, unbroken, broken))
                    print(
                        f"{s.key} [{backend}] {short(test)}: unbroken {unbroken.status} "
                        f"({unbroken.seconds:.0f}s), sabotaged {broken.status} ({broken.seconds:.0f}s)"
                    )
                    for line in broken.failures[:2]:
                        print(f"    {line[:220]}")
                    if broken.status not in ("FAILED", "passed"):
                        print("    " + broken.tail.replace("\n", "\n    "))
    finally:
        if not args.keep:
            for copy in copies:
                shutil.rmtree(copy, ignore_errors=True)
        else:
            print("copies kept:", *copies, sep="\n  ")
    return report(rows)


def report(rows: list[tuple[Sabotage, str, str, Outcome, Outcome]]) -> int:
    """The table, and whether every sabotage was caught by at least one of its tests."""
    caught: dict[tuple[str, str], bool] = {}
    clean = True
    for s, _test, backend, unbroken, broken in rows:
        caught[(s.key, backend)] = caught.get((s.key, backend), False) or broken.status == "FAILED"
        clean = clean and unbroken.status in ("passed", "-")
    print("\n| item | sabotage | test | backend | unbroken | sabotaged |")
    print("|---|---|---|---|---|---|")
    for s, test, backend, unbroken, broken in rows:
        print(
            f"| {s.item} | {s.key}: {s.title} | {short(test)} | {backend} "
            f"| {unbroken.status} | {broken.status} |"
        )
    print()
    ok = clean
    for (key, backend), was_caught in caught.items():
        s = next(x for x in SABOTAGES if x.key == key)
        expected = not s.control
        good = was_caught == expected
        ok = ok and good
        what = "caught" if was_caught else "not caught"
        note = " (a control: the promise still holds)" if s.control else ""
        print(f"{key} [{backend}]: {what}{note}{'' if good else '  <-- (!)'}")
    if not clean:
        print("(!) an unbroken run did not pass")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
