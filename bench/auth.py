"""What authentication costs: cold-start import, the key set fetch, and CPU per request.

    python bench/auth.py [--rtt-ms 10] [--repeat 5] [--requests 300] [--database-url URL]

Cold start (fresh processes, interleaved, medians): bench/auth_child.py imports `handler` and
answers two API Gateway v2 creates, with authentication

- off (the reference: today's service),
- on with AUTH_JWKS_URL: a real JWKS server on loopback behind the project's counting TCP proxy
  with the same added RTT as the database, so its fetch shows as round trips and connections,
- on with AUTH_JWKS (the key set inline: no fetch),

and the bare import of the libraries for scale. The token is a Better Auth-like EdDSA token.

Warm CPU (one process, interleaved rounds): `time.process_time()` per GET of a list through
the Lambda handler, authentication off (the reference) and on with each algorithm; and the
verification alone (header, key, signature, claims) per token.
"""

from __future__ import annotations

import argparse
import faulthandler
import json
import os
import statistics
import subprocess
import sys
import time
import uuid

from common import (
    DEFAULT_SERVER_URL,
    ROOT,
    api_gateway_v2_event,
    fresh_database,
    lambda_context,
    machine,
    server_address,
    through_proxy,
    use_repository_paths,
)

use_repository_paths()

from cold_start import compile_project, run_bare  # noqa: E402
from support.tcp_proxy import TcpProxy  # noqa: E402
from support.tokens import JwksServer, claims, jwks, new_key  # noqa: E402

CHILD = ROOT / "bench" / "auth_child.py"
CHILD_TIMEOUT_S = 60
TIME_LIMIT_S = 900
AUTH_VARIABLES = ("AUTH_JWKS_URL", "AUTH_JWKS", "AUTH_JWT_SECRET", "AUTH_ISSUER", "AUTH_AUDIENCE")
SECRET = "a shared secret of at least 32 bytes, for the bench"


def run_child(database_url: str, auth: dict[str, str], token: str | None, user: str, proxies: list[TcpProxy]) -> dict:
    env = {name: value for name, value in os.environ.items() if name not in AUTH_VARIABLES and name != "PYTHONPATH"}
    env.update(auth, LOG_LEVEL="WARNING", DATABASE_URL=database_url, BENCH_USER=user)
    if token:
        env["BENCH_TOKEN"] = token
    for proxy in proxies:
        proxy.reset_counts()
    process = subprocess.Popen([sys.executable, str(CHILD)], cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        first = json.loads(process.stdout.readline() or "{}")
        cold = [proxy.stats() for proxy in proxies]
        for proxy in proxies:
            proxy.reset_counts()
        process.stdin.write("\n")
        process.stdin.flush()
        second = json.loads(process.stdout.readline() or "{}")
        warm = [proxy.stats() for proxy in proxies]
        process.stdin.close()
        process.wait(CHILD_TIMEOUT_S)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    if first.get("first_status") != 201 or second.get("second_status") != 201:
        raise SystemExit(f"a create answered {first.get('first_status')}/{second.get('second_status')}, not 201")
    return {**first, **second, "cold": cold, "warm": warm}


def cold_start(args: argparse.Namespace, database_url: str, db_proxy: TcpProxy) -> None:
    key = new_key("EdDSA")
    with JwksServer(jwks(key)) as jwks_server, TcpProxy(
        target=("127.0.0.1", jwks_server.port), delay_ms=args.rtt_ms / 2
    ) as jwks_proxy:
        app_url = through_proxy(database_url, db_proxy.port)
        jwks_url = f"http://127.0.0.1:{jwks_proxy.port}/api/auth/jwks"
        kinds = {
            "off": {},
            "jwks-url": {"AUTH_JWKS_URL": jwks_url},
            "jwks-inline": {"AUTH_JWKS": json.dumps(jwks(key))},
        }
        proxies = [db_proxy, jwks_proxy]
        user = str(uuid.uuid4())
        token = key.sign(claims(user, issuer=None, audience=None, exp=int(time.time()) + 3600))
        run_child(app_url, {}, None, user, proxies)  # creates the tables; not measured
        runs: dict[str, list[dict]] = {kind: [] for kind in kinds}
        bare: list[float] = []
        for _ in range(args.repeat):
            bare.append(run_bare())
            for kind, auth in kinds.items():
                runs[kind].append(run_child(app_url, auth, token if auth else None, user, proxies))

    def median(kind: str, key: str) -> float:
        return statistics.median(run[key] for run in runs[kind])

    def trips(kind: str, phase: str, proxy: int, counter: str = "flights") -> str:
        values = [run[phase][proxy][counter] for run in runs[kind]]
        return f"{statistics.median(values):g}" if min(values) == max(values) else f"{statistics.median(values):g} [{min(values)}-{max(values)}]"

    off_import = median("off", "import_ms")
    bare_ms = statistics.median(bare)
    print(f"Cold start with authentication: {args.repeat} fresh processes of each kind, interleaved, {args.rtt_ms:g} ms added RTT")
    print("to the database and to the JWKS server; one API Gateway v2 create per invocation (medians)")
    print(f"Machine: {machine()}")
    print()
    print(f"{'':<34}{'import handler':>22}{'vs auth off':>13}{'vs bare':>9}{'1st call':>10}{'2nd call':>10}"
          f"{'DB trips 1st/2nd':>18}{'JWKS trips 1st/2nd (conns)':>28}")
    print(f"{'bare import (the libraries only)':<34}{bare_ms:>19.0f} ms{'':>13}{1:>8.2f}x")
    for kind, label in (("off", "auth off (reference)"), ("jwks-url", "AUTH_JWKS_URL"), ("jwks-inline", "AUTH_JWKS (inline)")):
        import_ms = median(kind, "import_ms")
        print(
            f"{label:<34}{import_ms:>19.0f} ms{import_ms / off_import:>12.2f}x{import_ms / bare_ms:>8.2f}x"
            f"{median(kind, 'first_ms'):>7.1f} ms{median(kind, 'second_ms'):>7.1f} ms"
            f"{trips(kind, 'cold', 0) + ' / ' + trips(kind, 'warm', 0):>18}"
            f"{trips(kind, 'cold', 1) + ' / ' + trips(kind, 'warm', 1) + ' (' + trips(kind, 'cold', 1, 'connections_opened') + ')':>28}"
        )
    print()
    print(f"Extra import with authentication on: {median('jwks-url', 'import_ms') - off_import:+.0f} ms (AUTH_JWKS_URL), "
          f"{median('jwks-inline', 'import_ms') - off_import:+.0f} ms (AUTH_JWKS, which also parses the key set)")
    print(f"Extra time of the first call with AUTH_JWKS_URL: {median('jwks-url', 'first_ms') - median('off', 'first_ms'):+.1f} ms "
          f"(the fetch: a TCP connect and one HTTP exchange; over https add the TLS handshake)")


def warm_cpu(args: argparse.Namespace, database_url: str) -> None:
    from mangum import Mangum

    from todo.app import create_app
    from todo.lambda_events import LambdaEventMiddleware
    from todo.settings import Settings
    from todo.tokens import verifier_from_settings

    keys = {algorithm: new_key(algorithm) for algorithm in ("EdDSA", "ES256", "RS256")}
    user = str(uuid.uuid4())
    expiry = int(time.time()) + 3600
    tokens = {algorithm: key.sign(claims(user, exp=expiry)) for algorithm, key in keys.items()}
    import jwt

    tokens["HS256"] = jwt.encode(claims(user, exp=expiry), SECRET, algorithm="HS256")
    common = {"database_url": database_url, "log_level": "WARNING"}
    checks = {"auth_issuer": "http://localhost:3000", "auth_audience": "http://localhost:3000"}
    settings = {
        "off": Settings(**common),
        **{algorithm: Settings(**common, **checks, auth_jwks=json.dumps(jwks(keys[algorithm]))) for algorithm in keys},
        "HS256": Settings(**common, **checks, auth_jwt_secret=SECRET),
    }
    handlers, apps = {}, []
    for name, setting in settings.items():
        app = create_app(setting)
        apps.append(app)
        handlers[name] = Mangum(LambdaEventMiddleware(app), lifespan="off")

    def request_cpu_ms(name: str) -> float:
        event = api_gateway_v2_event("GET", f"/api/{user}/tasks")
        if name != "off":
            event["headers"]["authorization"] = f"Bearer {tokens[name]}"
        began = time.process_time()
        response = handlers[name](event, lambda_context())
        spent = (time.process_time() - began) * 1000
        if response["statusCode"] != 200:
            raise SystemExit(f"{name}: the list answered {response['statusCode']}")
        return spent

    for name in handlers:  # warm up: connections, first-use caches
        for _ in range(20):
            request_cpu_ms(name)
    per_request: dict[str, list[float]] = {name: [] for name in handlers}
    for _ in range(args.requests):
        for name in handlers:
            per_request[name].append(request_cpu_ms(name))

    verifiers = {name: verifier_from_settings(settings[name]) for name in tokens}
    verify_us: dict[str, list[float]] = {name: [] for name in tokens}
    for _ in range(5):
        for name, verifier in verifiers.items():
            token = tokens[name]
            began = time.process_time()
            for _ in range(args.requests):
                algorithm, kid = verifier.header(token)
                verifier.subject(token, algorithm, kid)
            verify_us[name].append((time.process_time() - began) / args.requests * 1e6)
    for app in apps:
        app.state.database.dispose()

    off = statistics.median(per_request["off"])
    print()
    print(f"Warm CPU per request: GET of a list through the Lambda handler, {args.requests} rounds interleaved,")
    print("process CPU time (medians); tokens checked for signature, exp, iss and aud")
    print()
    print(f"{'':<24}{'CPU per request':>17}{'vs auth off':>13}{'verification alone':>21}")
    print(f"{'auth off (reference)':<24}{off:>14.3f} ms{1:>12.2f}x")
    for name in tokens:
        cpu = statistics.median(per_request[name])
        print(f"{name:<24}{cpu:>14.3f} ms{cpu / off:>12.2f}x{min(verify_us[name]):>18.0f} µs")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rtt-ms", type=float, default=10.0, help="added network round-trip time (default 10)")
    parser.add_argument("--repeat", type=int, default=5, help="fresh processes of each kind (default 5)")
    parser.add_argument("--requests", type=int, default=300, help="warm requests of each kind (default 300)")
    parser.add_argument("--database-url", default=DEFAULT_SERVER_URL, help="a PostgreSQL server (any database on it)")
    args = parser.parse_args()
    faulthandler.dump_traceback_later(TIME_LIMIT_S, exit=True)
    compile_project()
    with fresh_database(args.database_url) as database_url:
        with TcpProxy(target=server_address(args.database_url), delay_ms=args.rtt_ms / 2) as db_proxy:
            cold_start(args, database_url, db_proxy)
        driver_url = database_url.replace("postgresql://", "postgresql+psycopg://", 1)
        warm_cpu(args, driver_url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
