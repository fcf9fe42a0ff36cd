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
from reconciler.drill import DrillResult, drill
from reconciler.errors import (
    DataMapError,
    ObjectStorageError,
    ReconcileError,
    ResidualDataFound,
    ResidualScanFailed,
    SnapshotError,
    redact_url,
)
from reconciler.executor import Execution, OpResult
from reconciler.objects import ObjectStore
from reconciler.planner import Plan, make_plan
from reconciler.progress import NullProgress, Progress
from reconciler.replay import LedgerState, ReplayResult, replay
from reconciler.watermark import SnapshotDating, Watermark, stamp

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
    # backup watermark
    "stamp",
    "Watermark",
    "SnapshotDating",
    # drills
    "drill",
    "DrillResult",
    # object storage
    "ObjectStore",
    # progress
    "Progress",
    "NullProgress",
    # errors
    "ReconcileError",
    "DataMapError",
    "SnapshotError",
    "ObjectStorageError",
    "ResidualDataFound",
    "ResidualScanFailed",
    "redact_url",
]
