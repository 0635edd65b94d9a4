"""Which JWT library: import time on top of the service's own imports, and verification time.

    python bench/jwt_libraries.py [--repeat 7] [--tokens 500]

PyJWT (with cryptography) against joserfc: fresh processes, interleaved, each first importing
what `handler` imports anyway (the bare import of bench/cold_start.py), then timing the JWT
library's import; then, in this process, the time to verify one token (signature, exp, iss,
aud) of each algorithm the service accepts, with the key already parsed. The reference for the
import is the bare import itself, measured in the same fresh processes.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
import uuid
import warnings

from common import ROOT, machine, use_repository_paths

use_repository_paths()

from support.tokens import claims, new_key  # noqa: E402

BARE_IMPORT = "import fastapi, mangum, psycopg, pydantic_settings, sqlmodel"
LIBRARIES = {"PyJWT": "import jwt", "joserfc": "from joserfc import jwt, jwk"}
SECRET = "a shared secret of at least 32 bytes, for the bench"
ISSUER = AUDIENCE = "http://localhost:3000"

_CHILD = """
import time
began = time.perf_counter()
{bare}
bare_done = time.perf_counter()
{library}
done = time.perf_counter()
print((bare_done - began) * 1000, (done - bare_done) * 1000)
"""


def import_ms(library: str) -> tuple[float, float]:
    code = _CHILD.format(bare=BARE_IMPORT, library=LIBRARIES[library])
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True, timeout=60)
    bare, extra = result.stdout.split()
    return float(bare), float(extra)


def pyjwt_verifiers(keys: dict, tokens: dict) -> dict:
    import jwt
    from jwt import PyJWK

    decoder = jwt.PyJWT(options={"require": ["sub"]})
    verifiers = {}
    for algorithm, key in keys.items():
        parsed = PyJWK(key.public_jwk, algorithm=algorithm)
        verifiers[algorithm] = lambda token, parsed=parsed, algorithm=algorithm: decoder.decode(
            token, parsed, algorithms=[algorithm], issuer=ISSUER, audience=AUDIENCE, leeway=30
        )
    verifiers["HS256"] = lambda token: decoder.decode(
        token, SECRET, algorithms=["HS256"], issuer=ISSUER, audience=AUDIENCE, leeway=30
    )
    return verifiers


def joserfc_verifiers(keys: dict, tokens: dict) -> dict:
    from joserfc import jwk, jwt
    from joserfc.jwt import JWTClaimsRegistry

    registry = JWTClaimsRegistry(leeway=30, iss={"essential": True, "value": ISSUER}, aud={"essential": True, "value": AUDIENCE}, sub={"essential": True})
    verifiers = {}
    for algorithm, key in keys.items():
        parsed = jwk.import_key(key.public_jwk)

        def verify(token, parsed=parsed, algorithm=algorithm):
            decoded = jwt.decode(token, parsed, algorithms=[algorithm])
            registry.validate(decoded.claims)
            return decoded.claims

        verifiers[algorithm] = verify
    secret = jwk.OctKey.import_key(SECRET)

    def verify_hs256(token):
        decoded = jwt.decode(token, secret, algorithms=["HS256"])
        registry.validate(decoded.claims)
        return decoded.claims

    verifiers["HS256"] = verify_hs256
    return verifiers


def verify_us(verify, token: str, count: int) -> float:
    began = time.process_time()
    for _ in range(count):
        verify(token)
    return (time.process_time() - began) / count * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="fresh processes per library (default 7)")
    parser.add_argument("--tokens", type=int, default=500, help="verifications per measurement (default 500)")
    args = parser.parse_args()
    # joserfc flags the algorithm name "EdDSA" (RFC 9864 prefers "Ed25519"); Better Auth sends "EdDSA".
    warnings.filterwarnings("ignore", message="EdDSA is deprecated")
    try:
        import joserfc  # noqa: F401
    except ImportError:
        print("joserfc is not installed (pip install -r requirements-test.txt): nothing to compare")
        return 0

    imports: dict[str, list[float]] = {name: [] for name in LIBRARIES}
    bare: list[float] = []
    for _ in range(args.repeat):
        for name in LIBRARIES:
            bare_ms, extra_ms = import_ms(name)
            bare.append(bare_ms)
            imports[name].append(extra_ms)

    keys = {algorithm: new_key(algorithm) for algorithm in ("EdDSA", "ES256", "RS256")}
    user = str(uuid.uuid4())
    tokens = {algorithm: key.sign(claims(user, issuer=ISSUER, audience=AUDIENCE)) for algorithm, key in keys.items()}
    import jwt

    tokens["HS256"] = jwt.encode(claims(user, issuer=ISSUER, audience=AUDIENCE), SECRET, algorithm="HS256")
    verifiers = {"PyJWT": pyjwt_verifiers(keys, tokens), "joserfc": joserfc_verifiers(keys, tokens)}
    for library in verifiers.values():  # both accept every token
        for algorithm, verify in library.items():
            assert verify(tokens[algorithm])["sub"] == user
    timings: dict[tuple[str, str], list[float]] = {}
    for _ in range(5):
        for library, library_verifiers in verifiers.items():
            for algorithm, verify in library_verifiers.items():
                timings.setdefault((library, algorithm), []).append(verify_us(verify, tokens[algorithm], args.tokens))

    bare_ms = statistics.median(bare)
    print(f"JWT libraries: {args.repeat} fresh processes each, interleaved; verification: best of 5 x {args.tokens} tokens")
    print(f"Machine: {machine()}")
    print()
    print(f"{'':<10}{'import after the bare one':>27}{'vs bare':>9}" + "".join(f"{a + ' verify':>15}" for a in tokens))
    for library in LIBRARIES:
        extra = statistics.median(imports[library])
        row = f"{library:<10}{extra:>24.1f} ms{extra / bare_ms:>8.2f}x"
        row += "".join(f"{min(timings[(library, algorithm)]):>12.0f} µs" for algorithm in tokens)
        print(row)
    print(f"(the bare import itself: {bare_ms:.0f} ms)")
    print()
    print("Ratios joserfc / PyJWT: import "
          f"{statistics.median(imports['joserfc']) / statistics.median(imports['PyJWT']):.2f}x; verify "
          + ", ".join(f"{a} {min(timings[('joserfc', a)]) / min(timings[('PyJWT', a)]):.2f}x" for a in tokens))
    return 0


if __name__ == "__main__":
    sys.exit(main())
