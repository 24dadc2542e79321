"""``python -m ponder`` runs the CLI."""

from ponder.cli import main

main()
