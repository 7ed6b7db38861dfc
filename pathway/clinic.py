"""`Clinic`: the Python API, and the only place a transaction commits.

    from pathway import Clinic
    with Clinic.open("sqlite:///pathway.db", actor="dr.lee", role="physician") as clinic:
        clinic.enroll("MRN123", "cervical-neurotomy", at="2026-01-05")
        clinic.record("MRN123", "baseline", {"onset_date": "2025-06-01", "nrs": 7, ...})
        clinic.advance("MRN123", "start_evaluation")

Each write method is one transaction: the state change, its event and its
outbox message commit together or not at all. The commands and queries are the
service layer's (`pathway.service`); this class adds opening a database, the
reports (`pathway.reports`) and the integrations (`pathway.interop`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from pathway.definitions.catalog import Catalog
from pathway.domain.timeutil import When, iso, not_in_future, to_utc, utcnow
from pathway.errors import InvalidInput, NotFound, RoleRefused
from pathway.service.engine import Service
from pathway.service.inputs import check_patient_id, window
from pathway.store.repository import Store

if TYPE_CHECKING:  # imported where used: each pulls in more than most commands need
    from pathway.interop.delivery import DeliveryReport
    from pathway.interop.fanout import FanoutReport
    from pathway.interop.referrals import ImportReport
    from pathway.reports import BottleneckReport, RttReport
    from pathway.service.audit import AuditReport
    from pathway.service.identity import Identities
    from pathway.service.worklist import Item as WorklistItem


class Clinic(Service):
    """A clinic's pathway engine over one database."""

    @classmethod
    def open(
        cls,
        url: str = "sqlite:///pathway.db",
        *,
        workflows: Iterable[str | Path] = (),
        actor: str | None = None,
        role: str = "coordinator",
        create: bool = True,
    ) -> Clinic:
        """Open the database at `url` (creating the schema in an empty one) with the
        shipped pathways plus any `workflows` directories. `actor` and `role` are the
        defaults for every change made through this clinic."""
        catalog = Catalog.discover(workflows)
        store = Store.open(url, create=create)
        return cls(store, catalog, actor=actor, role=role)

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Clinic:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _as_of(self, as_of: When) -> datetime:
        """The time a report or the worklist is as of (default now; not in the future)."""
        now = utcnow()
        when = to_utc(as_of, name="--as-of", default=now, zone=self.zone)
        date_only = isinstance(as_of, str) and len(as_of.strip()) == 10
        return not_in_future(when, now, name="--as-of", date_only=date_only, zone=self.zone)

    def _pathway(self, pathway: str | None) -> None:
        if pathway is not None:
            self.catalog.get(pathway)  # an unknown pathway is NotFound, not an empty report

    # reports ----------------------------------------------------------------------
    def report_bottlenecks(
        self, *, pathway: str | None = None, since: When = None, until: When = None, as_of: When = None
    ) -> BottleneckReport:
        """The bottleneck report (see `pathway.reports.bottlenecks`)."""
        from pathway.reports import bottlenecks

        self._pathway(pathway)
        return bottlenecks(
            self.store,
            self.catalog,
            as_of=self._as_of(as_of),
            pathway=pathway,
            **window(since, until, self.zone),
        )

    def report_rtt(self, *, pathway: str | None = None, as_of: When = None) -> RttReport:
        """The referral-to-treatment report (see `pathway.reports.rtt`)."""
        from pathway.reports import rtt

        self._pathway(pathway)
        return rtt(self.store, self.catalog, as_of=self._as_of(as_of), pathway=pathway)

    def report_funnel(self, *, pathway: str | None = None, as_of: When = None) -> dict[str, Any]:
        """Stages reached, conversion and exits (see `pathway.reports.funnel`)."""
        from pathway.reports import funnel

        self._pathway(pathway)
        return funnel(self.store, self.catalog, as_of=self._as_of(as_of), pathway=pathway)

    def report_outcomes(self, *, pathway: str | None = None, as_of: When = None) -> dict[str, Any]:
        """Treatment outcomes as each workflow file defines them (see `pathway.reports.outcomes`)."""
        from pathway.reports import outcomes

        self._pathway(pathway)
        return outcomes(self.store, self.catalog, as_of=self._as_of(as_of), pathway=pathway)

    def report_html(
        self, *, pathway: str | None = None, since: When = None, until: When = None, as_of: When = None
    ) -> str:
        """Every report as one self-contained HTML page (see `pathway.reports.html`)."""
        from pathway.reports.html import render

        self._pathway(pathway)
        return render(
            self.store,
            self.catalog,
            as_of=self._as_of(as_of),
            pathway=pathway,
            **window(since, until, self.zone),
        )

    def worklist(
        self,
        *,
        as_of: When = None,
        role: str | None = None,
        kinds: Iterable[str] = (),
        state: str | None = None,
        pathway: str | None = None,
        due_within: int | None = None,
    ) -> list[WorklistItem]:
        """What needs action, most urgent first (see `pathway.service.worklist`): only items
        of `kinds`, of patients in `state` or `pathway`, due within `due_within` days."""
        from datetime import timedelta

        from pathway.domain.timeutil import local_day
        from pathway.service.worklist import worklist
        from pathway.service.worklist_kinds import KINDS

        wanted = tuple(kinds)
        unknown = [k for k in wanted if k not in KINDS]
        if unknown:
            raise InvalidInput(f"--kind: unknown kind {unknown[0]!r} (kinds: {', '.join(KINDS)})")
        if due_within is not None and not 0 <= due_within <= 3650:
            raise InvalidInput("--due-within: a number of days from 0 to 3650")
        self._pathway(pathway)
        when = self._as_of(as_of)
        items = worklist(self, as_of=when, role=self.known_role(role), pathway=pathway, in_state=state)
        if wanted:
            items = [i for i in items if i.kind in wanted]
        if due_within is not None:
            by = local_day(when, self.zone) + timedelta(days=due_within)
            items = [i for i in items if i.due is None or i.due <= by]
        return items

    # settings -----------------------------------------------------------------------
    def settings(self) -> dict[str, str]:
        """The clinic-wide settings stored in the database (see `pathway.store.settings`)."""
        return dict(self.store.settings)

    def set_setting(self, key: str, value: str, *, force: bool = False) -> dict[str, str]:
        """Store a clinic-wide setting. The time zone is set once: changing it changes what
        every stored time means as a calendar date, so it needs `force`."""
        from pathway.store import settings

        value = settings.check(key, value)
        current = self.store.settings.get(key)
        if key in settings.SET_ONCE and current is not None and current != value and not force:
            raise InvalidInput(
                f"{key} is already {current}: changing it changes the calendar date of every stored "
                "time (give --force if that is what you mean)"
            )
        with self.store.write() as tx:
            tx.put_setting(key, value)
        self.store.reload_settings()
        return self.settings()

    def create_role(self, name: str, password: str | None = None) -> bool:
        """PostgreSQL: create the least-privilege role services connect as (see
        `pathway.store.roles`); True when created, False when it existed and was granted again."""
        from pathway.store.roles import create_role

        with self.store.write() as tx:
            return create_role(tx.conn, name, password)

    def patient_view(self, patient: str, *, role: str | None = None) -> dict[str, Any]:
        """The patient on one screen (see `pathway.service.patient_view`); with `role`, the
        next steps say whether that role may take them."""
        from pathway.service.patient_view import patient_view

        return patient_view(self, patient, role=role)

    # the clinic service's identities ------------------------------------------------
    @property
    def identities(self) -> Identities:
        """Users, bearer tokens, sign-in and the access log of the service (see
        `pathway.service.identity`)."""
        found = self.__dict__.get("_identities")
        if found is None:  # made (and its module imported) on first use: every request asks
            from pathway.service.identity import Identities

            found = self.__dict__["_identities"] = Identities(self.store, self.known_role)
        return found

    # the audit trail ---------------------------------------------------------------
    def verify_audit(self, patient: str | None = None) -> AuditReport:
        """Recompute the hash chains, replay the events and check the database's protections
        (see `pathway.service.audit`); `patient` limits the first two to one patient."""
        from pathway.service.audit import verify

        if patient is not None:
            check_patient_id(patient)
        return verify(self.store, self.catalog, patient)

    # integration ------------------------------------------------------------------
    def outbox(self, *, pending_only: bool = False, limit: int | None = None) -> list[dict[str, Any]]:
        """Outbox messages, oldest first: the envelope plus delivery state."""
        with self.store.read() as tx:
            rows = tx.outbox_messages(pending_only=pending_only, limit=limit)
        return [
            {
                "message": row["payload"],
                "delivered_at": iso(row["delivered_at"]),
                "attempts": row["attempts"],
                "last_error": row["last_error"],
                "next_attempt_at": iso(row["next_attempt_at"]),
            }
            for row in rows
        ]

    # subscribers (see pathway.interop.subscribers and fanout) --------------------------
    def add_subscriber(self, name: str, **options: Any) -> dict[str, Any]:
        """Add a webhook (`url=`) or AMQP (`amqp=`, `exchange=`) subscriber; the result holds
        a webhook's signing secret, shown only here."""
        from pathway.interop import subscribers

        if options.get("pathway"):
            self.catalog.get(options["pathway"])
        return subscribers.add(self.store, name, **options)

    def subscribers(self) -> list[dict[str, Any]]:
        from pathway.interop import subscribers

        return subscribers.listed(self.store)

    def subscriber_action(self, action: str, name: str, *args: Any, **options: Any) -> Any:
        """`disable`, `dead_letters`, `retry` or `replay` (see `pathway.interop.subscribers`)."""
        from pathway.interop import subscribers

        if action not in ("disable", "dead_letters", "retry", "replay"):
            raise InvalidInput(f"unknown subscriber action {action!r}")
        return getattr(subscribers, action)(self.store, name, *args, **options)

    def deliver_subscribers(self, **options: Any) -> FanoutReport:
        """One delivery pass over every subscriber (see `pathway.interop.fanout.deliver`)."""
        from pathway.interop.fanout import deliver

        return deliver(self.store, **options)

    def deliver_outbox(self, url: str, **options: Any) -> DeliveryReport:
        """POST pending outbox messages to `url` (see `pathway.interop.delivery.deliver`)."""
        from pathway.interop.delivery import deliver

        return deliver(self.store, url, **options)

    def import_referrals(
        self,
        source: str | Path | Iterable[tuple[int, Mapping[str, str]]],
        *,
        pathway: str | None = None,
        skip_invalid: bool = False,
        actor: str | None = None,
        role: str | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> ImportReport:
        """Enroll every referral of a CSV file (or (line, row) pairs); see `pathway.interop.referrals`.

        Every row is validated first; with problems and without `skip_invalid`,
        nothing is written and the report lists them by line and field."""
        from pathway.interop import referrals

        actor, role = self._who(actor, role)
        rows = referrals.read_csv(source) if isinstance(source, str | Path) else source
        if pathway is None:  # rows without a pathway column go to the default pathway, if any
            try:
                pathway = self.catalog.default().id
            except NotFound:
                pathway = None
        valid, problems, count = referrals.validate(rows, self.catalog, pathway, check_patient_id)
        for workflow_id in {r.pathway for r in valid}:
            workflow = self.catalog.get(workflow_id)
            if role not in workflow.roles:
                raise RoleRefused(
                    f"cannot enroll in {workflow_id} as {role}: roles are {', '.join(workflow.roles)}",
                    workflow.roles,
                )
        clashes = referrals.overlaps(self.store, valid, self.catalog.region)
        if clashes:  # problems by line, in line order; the clashing rows are not written
            clashing = {line for line, _ in clashes}
            valid = [r for r in valid if r.line not in clashing]
            problems = sorted([*problems, *(p for _, p in clashes)], key=_line_number)
        report = referrals.ImportReport(rows=count, problems=problems)
        if problems and not skip_invalid:
            return report
        report.imported, report.already_enrolled = referrals.write(
            self.store, valid, actor=actor, role=role, progress=progress
        )
        return report

    def export_events(
        self, out: Any, fmt: str = "csv", *, pseudonymize: bool = False, pathway: str | None = None
    ) -> int:
        """Stream every event to the text file `out` as csv, jsonl or xes; returns the count.
        With `pseudonymize`, identifiers become keyed hashes (key in PATHWAY_PSEUDONYM_KEY)."""
        from pathway.interop import event_export as export

        key = export.pseudonym_key(pseudonymize)
        if fmt not in export.FORMATS:
            raise InvalidInput(f"--format: {fmt!r} is not one of {', '.join(export.FORMATS)}")
        self._pathway(pathway)
        return export.write_events(out, export.event_rows(self.store, key, pathway), fmt)


def _line_number(problem: str) -> int:
    """The line a problem of an import names ("line 12: ...")."""
    head = problem.split(":", 1)[0].removeprefix("line ")
    return int(head) if head.isascii() and head.isdigit() else 0
