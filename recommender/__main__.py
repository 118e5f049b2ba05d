"""``python -m recommender`` runs the command-line interface."""

from .cli import main

# Guarded: a local Dask cluster's worker processes are spawned, and import this module again.
if __name__ == "__main__":
    raise SystemExit(main())
