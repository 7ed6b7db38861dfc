"""Eight client processes racing on the same patients through the service: nothing is lost,
every change counted once, and each loser is told (409 concurrent change, 412 stale)."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.service.conftest import Server, enroll

CLIENT = r"""
import json, sys, httpx
url, token, patients, rounds = sys.argv[1], sys.argv[2], sys.argv[3].split(","), int(sys.argv[4])
counts = {"201": 0, "409": 0, "412": 0, "other": 0}
with httpx.Client(base_url=url, headers={"Authorization": "Bearer " + token}, timeout=60) as c:
    for i in range(rounds):
        patient = patients[i % len(patients)]
        etag = c.get(f"/v1/patients/{patient}").headers["etag"]
        r = c.post(f"/v1/patients/{patient}/observations",
                   json={"kind": "contact_attempt", "values": {"outcome": "no_response"}},
                   headers={"If-Match": etag})
        key = str(r.status_code) if str(r.status_code) in counts else "other"
        if key == "other":
            print(r.status_code, r.text, file=sys.stderr)
        counts[key] += 1
print(json.dumps(counts))
"""


def test_eight_clients_on_the_same_patients_lose_nothing(server: Server) -> None:
    patients = [f"RACE-{i}" for i in range(3)]
    with server.client("cora") as cora:
        for p in patients:
            enroll(cora, p)
    rounds = 25
    clients = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                CLIENT,
                server.url,
                server.tokens["cora"],
                ",".join(patients),
                str(rounds),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(8)
    ]
    results = []
    for client in clients:
        out, err = client.communicate(timeout=300)
        assert client.returncode == 0, err
        results.append(json.loads(out))
    total = {k: sum(r[k] for r in results) for k in results[0]}
    assert total["other"] == 0
    assert sum(total.values()) == 8 * rounds
    assert total["201"] >= 3  # someone won each patient at least once
    with server.client("cora") as cora:
        stored = sum(len(cora.get(f"/v1/patients/{p}/observations").json()) for p in patients)
        versions = sum(cora.get(f"/v1/patients/{p}").json()["enrollment_version"] for p in patients)
    # Every 201 is one stored observation and one version step; every loser wrote nothing.
    assert stored == total["201"]
    assert versions == len(patients) + total["201"]
    assert total["409"] + total["412"] == 8 * rounds - total["201"]
