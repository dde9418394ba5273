"""Worker processes for the concurrency tests (several coordinators, senders or claimers at once).

Each worker is a process of its own with its own database connections, as with the ``spawn`` start
method, but forked from a server process (``forkserver``) that imported core, SQLAlchemy and the
database drivers once: a spawned worker spends about a second of CPU importing them, every time.
The server holds no connection and no engine, so a worker inherits nothing but imported modules.
"""

from __future__ import annotations

import multiprocessing
from multiprocessing.context import BaseContext

# What every worker imports before its first line of work (an import that fails here is done again
# by the worker, and fails there, where the test sees it).
PRELOAD = [
    "sqlalchemy.orm",
    "sqlalchemy.dialects.postgresql.psycopg",
    "sqlalchemy.dialects.sqlite",
    "psycopg",
    "core.config",
    "core.plugins",
    "core.db.engine",
    "core.db.models",
    "core.audit",
    "core.claims",
    "core.outbox",
    "core.cli.main",
    "claimer",  # tests/claimer.py, the claim tests' worker
    "test_outbox",  # the senders' worker function
    "test_writers",  # the recording coordinators' worker function
]


def worker_context() -> BaseContext:
    """The multiprocessing context the tests start workers with."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(PRELOAD)  # read when the server starts: the first worker of this test run
    return ctx
