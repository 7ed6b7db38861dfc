"""The client processes of `bench/serve.py` and `bench/serve_ab.py`: each holds one
keep-alive connection to the service and, on every "go" line of its standard input,
moves its patients through `hold` and `resume` `rounds` times, then prints the latencies
(seconds, as JSON). It runs as `python -c CLIENT URL TOKEN ROUNDS P1,P2,...`.

The clients share the machine with the service and the database, so what a client costs
a request is taken from what is measured. `raw` (the default) writes each request as
bytes on a socket and reads the answer by its Content-Length: about 0.05 ms of CPU a
request, against about 0.17 ms for `stdlib` (http.client) and about 1 ms for `httpx`,
the clients an integrator would write (measured on a 2-core machine, `/proc`).

`raw` and `stdlib` connect anew for every measurement and keep that connection through
it. With several workers the kernel hands each new connection to one of them by a hash
(`pathway/api/workers.py`), so 8 clients fall 4/4 on two workers about a quarter of the
time and 5/3, 6/2 or 7/1 otherwise; connecting once for a whole run made its median
ratio that one draw's (0.50 with 6/2, 0.53-0.55 with 5/3, 0.60-0.65 with 4/4).
"""

from __future__ import annotations

RAW = r"""
import json, socket, sys, time
url, token, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
patients = sys.argv[4].split(",")
host, port = url.removeprefix("http://").split(":")
head = f"Host: {host}:{port}\r\nAuthorization: Bearer {token}\r\n"

class Connection:
    # One HTTP/1.1 keep-alive connection; answers are framed by Content-Length (as the
    # service's JSON answers are).
    def __init__(self):
        self.sock = socket.create_connection((host, int(port)), timeout=60)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def request(self, method, path, body=b""):
        extra = f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n" if body else ""
        self.sock.sendall(f"{method} {path} HTTP/1.1\r\n{head}{extra}\r\n".encode() + body)
        while (end := self.buf.find(b"\r\n\r\n")) < 0:
            self.more()
        lines = self.buf[:end].split(b"\r\n")
        fields = dict(line.lower().split(b":", 1) for line in lines[1:])
        if b"content-length" not in fields:
            sys.exit(f"an answer without Content-Length: {lines[0]!r}")
        total = end + 4 + int(fields[b"content-length"])
        while len(self.buf) < total:
            self.more()
        text, self.buf = self.buf[end + 4 : total], self.buf[total:]
        return int(lines[0].split()[1]), text

    def more(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("the service closed the connection")
        self.buf += chunk

bodies = [json.dumps(b).encode() for b in ({"trigger": "hold", "reason": "bench"}, {"trigger": "resume"})]
conn = Connection()
conn.request("GET", "/healthz")  # connected and warm; then one measurement per "go"
print("ready", flush=True)
while sys.stdin.readline().strip() == "go":
    conn.sock.close()  # a new connection each measurement (see the module's docstring)
    for attempt in range(5):
        try:
            conn = Connection()
            conn.request("GET", "/healthz")
            break
        except OSError:
            time.sleep(0.05 * attempt)
    else:
        sys.exit("cannot reach the service")
    latencies = []
    for _ in range(rounds):
        for p in patients:
            for body in bodies:
                began = time.perf_counter()
                status, text = conn.request("POST", f"/v1/patients/{p}/transitions", body)
                latencies.append(time.perf_counter() - began)
                if status != 200:
                    sys.exit(f"{status} {text!r}")
    print(json.dumps(latencies), flush=True)
"""

STDLIB = r"""
import http.client, json, sys, time
url, token, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
patients = sys.argv[4].split(",")
host, port = url.removeprefix("http://").split(":")
conn = http.client.HTTPConnection(host, int(port), timeout=60)  # one keep-alive connection
headers = {"Authorization": "Bearer " + token, "Content-Type": "application/json"}
conn.request("GET", "/healthz")
conn.getresponse().read()  # connected and warm; then one measurement per "go"
print("ready", flush=True)
while sys.stdin.readline().strip() == "go":
    conn.close()  # a new connection each measurement (see the module's docstring)
    for attempt in range(5):
        try:
            conn.request("GET", "/healthz")
            conn.getresponse().read()
            break
        except (OSError, http.client.HTTPException):
            conn.close()
            time.sleep(0.05 * attempt)
    else:
        sys.exit("cannot reach the service")
    latencies = []
    for _ in range(rounds):
        for p in patients:
            for body in ({"trigger": "hold", "reason": "bench"}, {"trigger": "resume"}):
                began = time.perf_counter()
                conn.request("POST", f"/v1/patients/{p}/transitions", json.dumps(body), headers)
                r = conn.getresponse()
                text = r.read()
                latencies.append(time.perf_counter() - began)
                if r.status != 200:
                    sys.exit(f"{r.status} {text!r}")
    print(json.dumps(latencies), flush=True)
"""

HTTPX = r"""
import json, sys, time, httpx
url, token, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
patients = sys.argv[4].split(",")
with httpx.Client(base_url=url, headers={"Authorization": "Bearer " + token}, timeout=60) as c:
    c.get("/healthz")  # connected and warm; then one measurement per "go"
    print("ready", flush=True)
    while sys.stdin.readline().strip() == "go":
        latencies = []
        for _ in range(rounds):
            for p in patients:
                for body in ({"trigger": "hold", "reason": "bench"}, {"trigger": "resume"}):
                    began = time.perf_counter()
                    r = c.post(f"/v1/patients/{p}/transitions", json=body)
                    latencies.append(time.perf_counter() - began)
                    if r.status_code != 200:
                        sys.exit(f"{r.status_code} {r.text}")
        print(json.dumps(latencies), flush=True)
"""


CLIENTS = {"raw": RAW, "stdlib": STDLIB, "httpx": HTTPX}
