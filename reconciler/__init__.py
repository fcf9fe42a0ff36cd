"""reconciler: replay the erasure ledger against a restored database snapshot.

Public API (the CLI uses nothing else)::

    from reconciler import DataMap, replay
    data_map = DataMap.load("datamap.yaml")
    result = replay("postgresql://...", data_map, ledger, as_of=date.today(), dry_run=True,
                    hash_key=key)

See docs/reconciler.md for the design and docs/datamap.md for the data map reference.
"""

from __future__ import annotations

import logging

from reconciler.datamap import DataMap
from reconciler.errors import (
    DataMapError,
    ReconcileError,
    ResidualDataFound,
    SnapshotError,
    redact_url,
)
from reconciler.executor import Execution, OpResult
from reconciler.planner import Plan, make_plan
from reconciler.replay import LedgerState, ReplayResult, replay

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "__version__",
    # replay
    "DataMap",
    "Plan",
    "make_plan",
    "replay",
    "ReplayResult",
    "LedgerState",
    "Execution",
    "OpResult",
    # errors
    "ReconcileError",
    "DataMapError",
    "SnapshotError",
    "ResidualDataFound",
    "redact_url",
]
