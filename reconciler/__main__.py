"""``python -m reconciler`` runs the ``reconciler`` command."""

from reconciler.cli import main

main(prog_name="reconciler")
