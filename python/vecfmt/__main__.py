"""``python -m vecfmt ...`` runs the ``vecfmt`` command line."""

from vecfmt._cli import main

main()
