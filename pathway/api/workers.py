"""`pathway serve --workers N` (N > 1) on Linux: N uvicorn worker processes on one port,
each listening on a socket of its own (SO_REUSEPORT), so that the kernel spreads new
connections over the workers.

uvicorn's own supervisor gives every worker the one socket its parent listens on, and the
worker that wakes first takes every connection waiting: eight keep-alive clients that
connected together were served seven by one worker and one by the other, so that one
worker's interpreter lock was the limit of the whole service (`bench/serve.py`, two
workers: ratio 0.51-0.53; 0.60-0.65 with a socket a worker). Elsewhere `serve` keeps
uvicorn's supervisor.

The parent first checks that nothing listens on the port (a second `pathway serve` there
would otherwise share this one's connections), then holds it (bound, not listening: it
takes no connection) until the last worker has stopped. It starts a new worker when one
dies, and stops when one ends before it served (every restart would fail the same way).
SIGTERM or SIGINT: each worker stops as one worker does (no new connections, requests in
flight finish, up to `GRACE` seconds), then the parent returns 0. The workers have a
process group of their own (Ctrl-C reaches the parent alone, which stops each worker
once), and a worker whose parent was killed outright gets SIGTERM from the kernel.
"""

from __future__ import annotations

import errno
import logging
import logging.config
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
from typing import Any

from pathway.api.app import FIELDS
from pathway.errors import InvalidInput

log = logging.getLogger("pathway.api")
BACKLOG = 2048  # uvicorn's default


def available() -> bool:
    """Whether the kernel spreads connections over sockets sharing a port (Linux)."""
    return sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _shared(host: str, port: int) -> socket.socket:
    sock = socket.socket(_family(host), socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def reserve(host: str, port: int) -> socket.socket:
    """The port checked free and held for the workers (port 0: one the system picks).
    Raises OSError when something listens there already."""
    if port:
        try:  # a server sharing the port would take this one's workers' connections
            socket.create_connection((_loopback(host), port), timeout=1).close()
        except OSError:
            pass
        else:
            raise OSError(errno.EADDRINUSE, "a server is listening there already")
    return _shared(host, port)


def _loopback(host: str) -> str:
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    return "::1" if host == "::" else host


def _worker(host: str, port: int, config: dict[str, Any], ready: Any, parent: int) -> None:
    """One worker process: its own listening socket on the shared port, and uvicorn on
    it; `ready` is set once it serves."""
    import ctypes

    import uvicorn

    class Worker(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets=sockets)
            if self.started:
                ready.set()

    os.setpgid(0, 0)
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the parent died before that took hold
        return
    sock = _shared(host, port)
    sock.listen(BACKLOG)
    Worker(uvicorn.Config(host=host, port=port, **config)).run(sockets=[sock])


def run(workers: int, host: str, port: int, config: dict[str, Any], grace: float) -> int:
    """Serve with `workers` processes until SIGTERM or SIGINT; 0, or 1 when a worker
    failed to start. `config` holds uvicorn's settings but the address."""
    if config.get("log_config"):
        logging.config.dictConfig(config["log_config"])
    try:
        held = reserve(host, port)
    except OSError as exc:
        raise InvalidInput(f"--port: cannot listen on {host}:{port}: {exc.strerror}") from None
    port = held.getsockname()[1]
    spawn = multiprocessing.get_context("spawn")
    stop = threading.Event()
    previous = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGTERM, signal.SIGINT)}

    def start() -> tuple[Any, Any]:
        ready = spawn.Event()
        process = spawn.Process(target=_worker, args=(host, port, config, ready, os.getpid()))
        process.start()
        return process, ready

    running: list[tuple[Any, Any]] = []
    failed = False
    try:
        running = [start() for _ in range(workers)]
        serving = {"event": "serving", "url": f"http://{host}:{port}", "workers": workers, "pid": os.getpid()}
        log.info("serving", extra={FIELDS: serving})
        while not stop.wait(0.5):
            for i, (process, ready) in enumerate(running):
                if process.is_alive():
                    continue
                fields = {"event": "worker_exited", "pid": process.pid, "exit_code": process.exitcode}
                if not ready.is_set():
                    fields["then"] = "it ended before it served: stopping the service"
                    log.error("a worker failed to start", extra={FIELDS: fields})
                    failed = True
                    stop.set()
                    break
                fields["then"] = "starting another"
                log.warning("a worker exited", extra={FIELDS: fields})
                running[i] = start()
    finally:
        for process, _ in running:
            if process.is_alive():
                os.kill(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace + 5
        for process, _ in running:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join()
        held.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 1 if failed else 0
