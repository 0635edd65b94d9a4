"""Entry points: `app` for uvicorn, `handler` for AWS Lambda (through Mangum).

Importing this module does no I/O: the database is first reached by the first request, so a
cold start that cannot reach it is not cached, and the next invocation tries again.
"""

from mangum import Mangum

from todo.app import create_app

app = create_app()

# Mangum would run the ASGI lifespan on every invocation; the app needs none.
handler = Mangum(app, lifespan="off")
