"""`uvicorn handler:app --workers N --no-server-header`, with TCP_NODELAY on its connections.

With more than one worker, uvicorn binds the listening socket itself and leaves its protocol
number at 0; asyncio turns TCP_NODELAY on only for sockets that say IPPROTO_TCP, so every
answer with a body then waits for the client's delayed ACK (about 40 ms on Linux) once a
connection is kept alive (https://github.com/Kludex/uvicorn/issues/3149). The load run would
measure that instead of the service. This starts the same supervisor on a listener made
with IPPROTO_TCP, as uvicorn.main.run does with its own.

    python loadtest/serve.py --port 8000 --workers 4
"""

from __future__ import annotations

import argparse
import socket
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def listener(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


def main() -> None:
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    config = uvicorn.Config(
        "handler:app",
        host=args.host,
        port=args.port,
        workers=args.workers,
        server_header=False,
        access_log=False,  # the service writes its own access log
    )
    Multiprocess(config, sockets=[listener(args.host, args.port)]).run()


if __name__ == "__main__":
    main()
