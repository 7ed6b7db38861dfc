"""Where the patient commands run: on the database (`Local`, the default) or through the
clinic service (`Remote`, with `pathway --server URL --token TOKEN`).

Both give the same JSON-ready results (the service's responses are the CLI's `--json`
output), so each command prints the same text and exits with the same code either way:
a problem from the service carries the CLI's exit code and becomes `RemoteError`.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from pathway.errors import PathwayError


class RemoteError(PathwayError):
    """A problem the service answered with (its detail, exit code, reasons and problems)."""

    def __init__(self, body: dict[str, Any]) -> None:
        super().__init__(str(body.get("detail") or body.get("title") or "the service refused"))
        self.body = body
        self.exit_code = int(body.get("exit_code") or 1)

    def to_json(self) -> dict[str, Any]:
        """The same JSON the CLI prints for the error on the database."""
        if self.body.get("reasons") is not None and self.body.get("trigger"):
            return {
                "refused": True,
                "trigger": self.body["trigger"],
                "reasons": self.body["reasons"],
                "message": str(self),
            }
        found: dict[str, Any] = {"error": self.body.get("error") or "RemoteError", "message": str(self)}
        if self.body.get("problems") is not None:
            found["problems"] = self.body["problems"]
        return found


class Local:
    """The commands on the database, through `pathway.Clinic`."""

    def __init__(self, clinic: Any) -> None:
        self.clinic = clinic

    def enroll(self, patient: str, **options: Any) -> dict[str, Any]:
        pathway = options.pop("pathway", None) or self.clinic.catalog.default().id
        result: dict[str, Any] = self.clinic.enroll(patient, pathway, **options).to_dict()
        return result

    def record(self, patient: str, kind: str, values: dict[str, Any], **options: Any) -> dict[str, Any]:
        from pathway.service.results import observation_dict

        return observation_dict(self.clinic.record(patient, kind, values, **options))

    def correct(self, patient: str, observation_id: int, **options: Any) -> dict[str, Any]:
        from pathway.service.results import observation_dict

        return observation_dict(self.clinic.correct(patient, observation_id, **options))

    def advance(self, patient: str, trigger: str, **options: Any) -> dict[str, Any]:
        result: dict[str, Any] = self.clinic.advance(patient, trigger, **options).to_dict()
        return result

    def reopen(self, patient: str, **options: Any) -> dict[str, Any]:
        result: dict[str, Any] = self.clinic.reopen(patient, **options).to_dict()
        return result

    def status(self, patient: str, **options: Any) -> dict[str, Any]:
        result: dict[str, Any] = self.clinic.status(patient, **options).to_dict()
        return result

    def check(self, patient: str, trigger: str | None, **options: Any) -> list[dict[str, Any]]:
        from pathway.service.results import check_dict

        return [check_dict(c) for c in self.clinic.check(patient, trigger, **options)]

    def history(self, patient: str, *, audit: bool = False, **options: Any) -> list[dict[str, Any]]:
        from pathway.service.results import event_dicts

        if audit:
            trail: list[dict[str, Any]] = self.clinic.audit_trail(patient, **options)
            return trail
        return event_dicts(self.clinic.history(patient, **options))

    def episodes(self, patient: str) -> list[dict[str, Any]]:
        return [s.to_dict() for s in self.clinic.episodes(patient)]

    def enrollments(self, **options: Any) -> list[dict[str, Any]]:
        return [r.to_dict() for r in self.clinic.list(**options)]

    def worklist(self, **options: Any) -> list[dict[str, Any]]:
        return [i.to_dict() for i in self.clinic.worklist(**options)]


class Remote:
    """The same commands through the clinic service's HTTP API."""

    def __init__(self, url: str, token: str | None, role: str | None) -> None:
        import httpx

        if not token:
            raise PathwayError(
                "--server needs --token (or PATHWAY_TOKEN): pathway tokens create NAME makes one"
            )
        headers = {"Authorization": f"Bearer {token}", "User-Agent": "pathway-cli"}
        if role:
            headers["X-Pathway-Role"] = role
        self.http = httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=60)

    def close(self) -> None:
        self.http.close()

    def _call(self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None) -> Any:
        import httpx

        query = {k: v for k, v in (params or {}).items() if v is not None and v is not False}
        try:
            response = self.http.request(method, path, json=json, params=query)
        except httpx.HTTPError as exc:
            raise PathwayError(
                f"cannot reach the service at {self.http.base_url}: {type(exc).__name__}"
            ) from None
        if response.status_code >= 400:
            try:
                body = response.json()
            except ValueError:
                body = {"detail": f"the service answered {response.status_code}", "exit_code": 1}
            raise RemoteError(body if isinstance(body, dict) else {"detail": str(body), "exit_code": 1})
        return response.json()

    @staticmethod
    def _patient(patient: str, rest: str = "") -> str:
        return f"/v1/patients/{quote(patient, safe='')}{rest}"

    def enroll(self, patient: str, **options: Any) -> dict[str, Any]:
        result: dict[str, Any] = self._call(
            "POST", self._patient(patient, "/enrollments"), json=_body(options)
        )
        return result

    def record(self, patient: str, kind: str, values: dict[str, Any], **options: Any) -> dict[str, Any]:
        body = {"kind": kind, "values": _plain(values), **_body(options)}
        result: dict[str, Any] = self._call("POST", self._patient(patient, "/observations"), json=body)
        return result

    def correct(self, patient: str, observation_id: int, **options: Any) -> dict[str, Any]:
        path = self._patient(patient, f"/observations/{observation_id}/correction")
        result: dict[str, Any] = self._call("POST", path, json=_body(options))
        return result

    def advance(self, patient: str, trigger: str, **options: Any) -> dict[str, Any]:
        body = {"trigger": trigger, **_body(options)}
        result: dict[str, Any] = self._call("POST", self._patient(patient, "/transitions"), json=body)
        return result

    def reopen(self, patient: str, **options: Any) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", self._patient(patient, "/reopen"), json=_body(options))
        return result

    def status(self, patient: str, **options: Any) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", self._patient(patient), params=options)
        return result

    def check(self, patient: str, trigger: str | None, **options: Any) -> list[dict[str, Any]]:
        options.pop("role", None)  # the service judges for the caller's role
        result: list[dict[str, Any]] = self._call(
            "GET", self._patient(patient, "/check"), params={"trigger": trigger, **options}
        )
        return result

    def history(self, patient: str, *, audit: bool = False, **options: Any) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call(
            "GET", self._patient(patient, "/history"), params={"audit": audit, **options}
        )
        return result

    def episodes(self, patient: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call("GET", self._patient(patient, "/episodes"))
        return result

    def enrollments(self, **options: Any) -> list[dict[str, Any]]:
        params = {
            "pathway": options.get("pathway"),
            "state": options.get("state"),
            "open": options.get("open_only"),
        }
        rows: list[dict[str, Any]] = []
        cursor = None
        while True:
            page = self._call("GET", "/v1/enrollments", params={**params, "limit": 1000, "cursor": cursor})
            rows += page["items"]
            cursor = page["next_cursor"]
            if not cursor:
                return rows

    def worklist(self, **options: Any) -> list[dict[str, Any]]:
        kinds = options.pop("kinds", ()) or None
        params = {**options, "kind": list(kinds) if kinds else None}
        result: list[dict[str, Any]] = self._call("GET", "/v1/worklist", params=params)
        return result


def _body(options: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in options.items() if v is not None}


def _plain(values: dict[str, Any]) -> dict[str, Any]:
    """Parsed field values as JSON (dates as ISO text)."""
    from datetime import date

    return {k: v.isoformat() if isinstance(v, date) else v for k, v in values.items()}
