"""``python -m diana_core`` runs the diana command (same as the ``diana`` console script)."""

from diana_core.cli import main

main()
