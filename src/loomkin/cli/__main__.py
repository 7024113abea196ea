"""``python -m loomkin.cli`` runs the ``loomkin`` command."""

from loomkin.cli.main import main

main()
