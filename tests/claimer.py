"""Run in child processes by the claim tests: coordinators claiming at the same moments as the others."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import Any

CONFIG = Path(__file__).resolve().parents[1] / "config" / "chain.yaml"


def claim_until_empty(url: str, user: str, count: int, now: str, barrier: Any, out: Any) -> None:
    """Load everything, wait for the others, then claim ``count`` patients at a time until told there is
    nothing left; put ``(user, [(started, ended, task ids), ...])`` or the error on ``out``."""
    try:
        from core.claims import claim
        from core.config import StaffMember, load_config
        from core.db.engine import get_engine, session_scope

        config = load_config(CONFIG)
        config.model.staff.append(StaffMember(username=user, name=user, role="coordinator", sites=["SH-DENT"]))
        with get_engine(url).connect():  # connected before the start, so all claim at once
            pass
        barrier.wait()
        claims: list[tuple[float, float, list[int]]] = []
        while not claims or claims[-1][2]:
            started = time.monotonic()
            with session_scope(url, immediate=True) as session:
                ids = claim(session, config, user=user, sites=["SH-DENT"], count=count,
                            now=datetime.fromisoformat(now))
            claims.append((started, time.monotonic(), ids))
        out.put((user, claims))
    except BaseException as exc:  # reported by the test, not lost in the child
        out.put((user, f"{type(exc).__name__}: {exc}"))


def write_audit_rows(url: str, user: str, transactions: int, barrier: Any, out: Any) -> None:
    """Wait for the others, then commit ``transactions`` transactions of three audit rows each as fast as
    possible (the audit chain's concurrent writers); put ``(user, None)`` or the error on ``out``."""
    try:
        from core.audit import audit
        from core.db.engine import get_engine, session_scope

        with get_engine(url).connect():
            pass
        barrier.wait()
        at = datetime.fromisoformat("2026-11-23T10:05+08:00")
        for n in range(transactions):
            with session_scope(url, immediate=True) as session:
                for k in range(3):
                    audit(session, user=user, at=at, action="test", entity="x", entity_id=n * 3 + k)
        out.put((user, None))
    except BaseException as exc:  # reported by the test
        out.put((user, f"{type(exc).__name__}: {exc}"))
