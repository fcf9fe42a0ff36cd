"""``python -m erasure_ledger`` runs the ``erasure-ledger`` command."""

from erasure_ledger.cli import main

main()
