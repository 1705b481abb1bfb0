"""``python -m diana_core.cli`` runs the diana command."""

from diana_core.cli import main

main()
