"""Token owners kept in memory by a service process on PostgreSQL, so that a request's
bearer token costs no query: every change to `users` or `tokens` (by this code, by
another process, or by hand in SQL) notifies the channel `pathway_identity` when it
commits (a trigger, schema revision 0008), and a listening thread forgets every owner
then. A revoked token or a disabled user is refused as soon as that notification
arrives (milliseconds); expiry is judged on every request from the cached time.

The cache is used only while its listener is connected: before it has started, and
from the moment its connection fails until it has listened again, every lookup goes to
the database, as without a cache. A lookup that began before a change was notified is
not kept (each change moves the `generation` on). Unknown tokens are never kept, and
an entry is read again after `TTL` seconds in any case.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

CHANNEL = "pathway_identity"
TTL = 60.0
MAX_ENTRIES = 10_000
RETRY = 1.0  # seconds before listening again after a failure, doubled up to MAX_RETRY
MAX_RETRY = 30.0
WAKE = 0.5  # how often the listener looks whether it is asked to stop

log = logging.getLogger("pathway.store")


class TokenCache:
    def __init__(self, conninfo: str) -> None:
        self._conninfo = conninfo
        self._entries: dict[str, tuple[float, dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self._generation = 0
        self._listening = False
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._listen, name="pathway-token-cache", daemon=True)

    def start(self, wait: float = 5.0) -> None:
        """Start listening; returns once listening (or after `wait` seconds, uncached
        until it does)."""
        self._thread.start()
        self._ready.wait(wait)

    @property
    def listening(self) -> bool:
        return self._listening

    def get(self, digest: str) -> tuple[dict[str, Any] | None, int]:
        """(the cached owner or None, the generation to `put` a fresh lookup with)."""
        with self._lock:
            generation = self._generation
            if not self._listening:
                return None, generation
            found = self._entries.get(digest)
            if found is None or found[0] <= time.monotonic():
                return None, generation
            return found[1], generation

    def put(self, digest: str, owner: dict[str, Any], generation: int) -> None:
        """Keep `owner`, read after `get` gave `generation`, unless a change came since."""
        with self._lock:
            if not self._listening or generation != self._generation:
                return
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
            self._entries[digest] = (time.monotonic() + TTL, owner)

    def forget(self, *, listening: bool | None = None) -> None:
        """Forget every owner (a change was notified), and say whether it is listening."""
        with self._lock:
            self._generation += 1
            self._entries.clear()
            if listening is not None:
                self._listening = listening

    def close(self) -> None:
        """Stop listening (within `WAKE` seconds)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _listen(self) -> None:
        import psycopg

        retry = RETRY
        failing = False
        while not self._stop.is_set():
            try:
                # TCP keepalives: a connection that died without a word (a network gone) is
                # noticed in seconds, not at the next TTL.
                with psycopg.connect(
                    self._conninfo,
                    autocommit=True,
                    keepalives=1,
                    keepalives_idle=5,
                    keepalives_interval=2,
                    keepalives_count=3,
                    connect_timeout=10,
                ) as connection:
                    connection.execute(f"LISTEN {CHANNEL}")
                    self.forget(listening=True)  # whatever changed while not listening
                    self._ready.set()
                    if failing:
                        log.warning("token cache: listening again")
                    failing, retry = False, RETRY
                    while not self._stop.is_set():
                        for _ in connection.notifies(timeout=WAKE, stop_after=1):
                            self.forget()
            except Exception as exc:
                if self._stop.is_set():
                    break
                if not failing:  # said once, not at every retry
                    log.warning(
                        "token cache: not listening (%s); looking tokens up in the database until it "
                        "can listen again",
                        type(exc).__name__,
                    )
                failing = True
            finally:
                self.forget(listening=False)
            self._ready.set()
            self._stop.wait(retry)
            retry = min(retry * 2, MAX_RETRY)
