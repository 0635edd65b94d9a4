"""Entry points: `app` for uvicorn, `handler` for AWS Lambda (through Mangum).

Importing this module does no I/O: the database is first reached by the first request, so a
cold start that cannot reach it is not cached, and the next invocation tries again. Under
Lambda SnapStart the import is the snapshotted init phase, and primes the app (todo.priming).
"""

from mangum import Mangum
from mangum.adapter import DEFAULT_TEXT_MIME_TYPES

from todo.app import create_app
from todo.errors import PROBLEM_CONTENT_TYPE
from todo.lambda_events import LambdaEventMiddleware
from todo.priming import in_snapstart_init, prime
from todo.settings import MissingDatabaseUrl

try:
    app = create_app()
except MissingDatabaseUrl as missing:
    # Stop at start with one clear line (Lambda's init error, uvicorn's start), not a traceback.
    raise SystemExit(str(missing)) from None

snapstart_init = in_snapstart_init()
handler = Mangum(
    LambdaEventMiddleware(app, prime_first_event=not snapstart_init),
    # Mangum would run the ASGI lifespan on every invocation; the app needs none.
    lifespan="off",
    # Problem documents are text: without this Mangum would send them base64-encoded.
    text_mime_types=[*DEFAULT_TEXT_MIME_TYPES, PROBLEM_CONTENT_TYPE],
)

if snapstart_init:
    # The snapshot is taken after this: its one-time work then costs no restored container.
    prime(app)

try:  # Lambda SnapStart (Python 3.12+): the runtime provides this module.
    from snapshot_restore_py import register_after_restore
except ImportError:
    pass
else:
    # A connection in the snapshot would be shared by every restored copy, and long dead.
    register_after_restore(app.state.database.dispose)
