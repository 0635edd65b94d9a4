#!/usr/bin/env python3
"""Build the Lambda deployment zip: runtime code + requirements.txt, for Linux on arm64 or x86_64.

No Docker: uv (or pip, where there is no uv) downloads the manylinux wheels of the target
platform (wheels only), so a package without a wheel for the target fails the build instead of
being compiled for this machine.  Bytecode is compiled by an interpreter of the target's Python
version (this script re-executes itself under ``python3.X`` when started by another one), in
``unchecked-hash`` mode: /var/task is read-only and the zip's timestamps are not the source's, so
timestamp-checked .pyc files would be judged stale and recompiled on every cold start.

    python3 scripts/build_lambda.py --runtime python3.12 --architecture arm64 \\
        --output .serverless/todo-api.zip

The serverless.yml plugin (scripts/serverless_lambda_build.js) runs this on ``osls package``.
Set LAMBDA_BUILD_PYTHON to the interpreter to use when ``python3.X`` is not on PATH.
"""

from __future__ import annotations

import argparse
import compileall
import py_compile
import glob
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# What the function needs at run time, relative to the repository; everything else stays out.
RUNTIME_FILES = ["handler.py"]
# migrations/: the cold start applies pending migrations itself (todo/migrate.py finds it beside todo/).
RUNTIME_PACKAGES = ["todo", "migrations"]
# The Lambda Python 3.12+ runtimes run on Amazon Linux 2023, glibc 2.34: any manylinux wheel up to
# that works.  Listing the tags one by one matters: psycopg-binary ships its aarch64 wheels as
# manylinux_2_28 only, and a lone manylinux2014 tag would silently resolve to an older release.
GLIBC_MAX_MINOR = 34
GLIBC_MIN_MINOR = 17
ARCHITECTURES = {"arm64": "aarch64", "x86_64": "x86_64"}
# Dropped from the dependencies: console scripts (bin/), byte code of another interpreter, typing
# stubs, hidden directories and documents (e.g. FastAPI's .agents/ notes), hidden files at the top
# (uv's .lock). Licences and the rest
# of each *.dist-info stay: importlib.metadata reads them at run time.
JUNK_DIRS = {"__pycache__"}
JUNK_TOP_LEVEL_DIRS = {"bin"}
# The project templates of `alembic init`: the service brings its own migrations/.
JUNK_PATHS = {"alembic/templates"}
JUNK_SUFFIXES = (".pyc", ".pyo", ".pyi", ".md", ".rst")
# The fixed date of every zip entry, so that the same inputs give the same zip (and code hash).
ZIP_DATE = (2020, 1, 1, 0, 0, 0)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runtime", default="python3.12", help="Lambda runtime, e.g. python3.12")
    parser.add_argument("--architecture", default="arm64", choices=sorted(ARCHITECTURES))
    parser.add_argument("--requirements", default=str(ROOT / "requirements.txt"))
    parser.add_argument("--build-dir", default=str(ROOT / "build" / "lambda"))
    parser.add_argument("--output", default=str(ROOT / "build" / "todo-api.zip"))
    return parser.parse_args()


def target_version(runtime: str) -> tuple[int, int]:
    match = re.fullmatch(r"python(\d+)\.(\d+)", runtime)
    if not match:
        sys.exit(f"build_lambda: unsupported runtime {runtime!r} (expected e.g. python3.12)")
    return int(match.group(1)), int(match.group(2))


def find_interpreter(version: tuple[int, int]) -> str | None:
    """An interpreter of the target version: $LAMBDA_BUILD_PYTHON, python3.X on PATH, or pyenv's."""
    name = "python%d.%d" % version
    candidates = [os.environ.get("LAMBDA_BUILD_PYTHON"), shutil.which(name)]
    pyenv_root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    candidates += sorted(glob.glob(os.path.join(pyenv_root, "versions", "%d.%d.*" % version, "bin", name)))
    candidates += sorted(glob.glob("/usr/local/bin/" + name) + glob.glob("/usr/bin/" + name))
    for candidate in filter(None, candidates):
        try:
            out = subprocess.run(
                [candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                capture_output=True, text=True, timeout=30, check=True,
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            continue  # e.g. a pyenv shim for a version that is installed but not enabled
        if out == "%d.%d" % version:
            return candidate
    return None


def reexec_under(version: tuple[int, int]) -> None:
    if sys.version_info[:2] == version:
        return
    interpreter = find_interpreter(version)
    if interpreter is None:
        sys.exit(
            "build_lambda: the byte code must be compiled by Python %d.%d, the Lambda runtime's "
            "version, and none was found; install it or set LAMBDA_BUILD_PYTHON" % version
        )
    os.execv(interpreter, [interpreter, os.path.abspath(__file__), *sys.argv[1:]])


def pinned_requirements(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)(\[[^\]]*\])?\s*==\s*([^\s;]+)", line.split(";")[0].strip())
        if match:
            pins[normalize(match.group(1))] = match.group(3)
    return pins


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def installed_versions(target: Path) -> dict[str, str]:
    versions = {}
    for metadata in target.glob("*.dist-info/METADATA"):
        fields = {}
        for line in metadata.read_text(encoding="utf-8").splitlines():
            if not line:
                break
            key, _, value = line.partition(": ")
            fields.setdefault(key, value)
        versions[normalize(fields["Name"])] = fields["Version"]
    return versions


def find_uv() -> str | None:
    """uv, from $UV, the project's virtual environment (the Makefile installs it there) or PATH."""
    for candidate in (os.environ.get("UV"), str(ROOT / ".venv" / "bin" / "uv"), shutil.which("uv")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def install_command(args: argparse.Namespace, version: tuple[int, int], target: Path) -> list[str]:
    """The install of requirements.txt for the target: by uv where there is one (about ten times
    less CPU than pip), else by pip. Both take wheels only, for CPython of the target's version on
    manylinux up to glibc 2.GLIBC_MAX_MINOR, and compile nothing."""
    machine = ARCHITECTURES[args.architecture]
    python_version = "%d.%d" % version
    uv = find_uv()
    if uv is not None:
        return [
            uv, "pip", "install", "--quiet", "--python", sys.executable, "--only-binary", ":all:",
            "--python-platform", f"{machine}-manylinux_2_{GLIBC_MAX_MINOR}", "--python-version", python_version,
            "--target", str(target), "-r", args.requirements,
        ]
    platforms = [f"manylinux_2_{minor}_{machine}" for minor in range(GLIBC_MAX_MINOR, GLIBC_MIN_MINOR - 1, -1)]
    platforms.append(f"manylinux2014_{machine}")
    tag = "%d%d" % version
    command = [
        sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
        "--root-user-action", "ignore", "--no-compile", "--only-binary=:all:", "--implementation", "cp",
        "--python-version", python_version, "--abi", f"cp{tag}", "--abi", "abi3", "--abi", "none",
        "--target", str(target), "-r", args.requirements,
    ]
    for platform in platforms:
        command += ["--platform", platform]
    return command


def install_dependencies(args: argparse.Namespace, version: tuple[int, int], target: Path) -> None:
    subprocess.run(install_command(args, version, target), check=True)

    # Every pin of requirements.txt must be what was installed: a platform without the pinned
    # release's wheel must fail here, not ship another version.
    installed = installed_versions(target)
    wrong = {
        name: (pin, installed.get(name))
        for name, pin in pinned_requirements(Path(args.requirements)).items()
        if installed.get(name) != pin
    }
    if wrong:
        details = ", ".join(f"{name}: pinned {pin}, got {got}" for name, (pin, got) in sorted(wrong.items()))
        sys.exit(f"build_lambda: resolved versions differ from requirements.txt: {details}")


def prune(target: Path) -> None:
    for path in sorted(target.rglob("*"), reverse=True):
        relative = path.relative_to(target)
        if any(part.endswith(".dist-info") for part in relative.parts):
            continue
        if path.is_dir() and (
            path.name in JUNK_DIRS
            or path.name.startswith(".")
            or (len(relative.parts) == 1 and path.name in JUNK_TOP_LEVEL_DIRS)
            or relative.as_posix() in JUNK_PATHS
        ):
            shutil.rmtree(path)
        elif path.is_file() and (
            path.name.endswith(JUNK_SUFFIXES) or (len(relative.parts) == 1 and path.name.startswith("."))
        ):
            path.unlink()


def copy_runtime_code(target: Path) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo", ".*")
    for name in RUNTIME_FILES:
        shutil.copy2(ROOT / name, target / name)
    for name in RUNTIME_PACKAGES:
        shutil.copytree(ROOT / name, target / name, ignore=ignore)


def compile_bytecode(target: Path) -> None:
    ok = compileall.compile_dir(
        str(target), quiet=1, workers=0, ddir="/var/task",
        invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
    )
    if not ok:
        sys.exit("build_lambda: byte-compiling failed")


def write_zip(source: Path, output: Path) -> None:
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(output.name + ".partial")
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for path in sorted(p for p in source.rglob("*") if p.is_file()):
            info = zipfile.ZipInfo(path.relative_to(source).as_posix(), date_time=ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            # Readable by the runtime's user whatever this machine's umask; shared libraries executable.
            mode = 0o755 if os.access(path, os.X_OK) else 0o644
            info.external_attr = (0o100000 | mode) << 16
            archive.writestr(info, path.read_bytes())
    partial.replace(output)


def main() -> None:
    args = parse_args()
    version = target_version(args.runtime)
    reexec_under(version)

    build = Path(args.build_dir)
    if build.exists():
        shutil.rmtree(build)
    build.mkdir(parents=True)
    install_dependencies(args, version, build)
    prune(build)
    copy_runtime_code(build)
    compile_bytecode(build)
    output = Path(args.output)
    write_zip(build, output)
    unzipped = sum(p.stat().st_size for p in build.rglob("*") if p.is_file())
    print(
        f"build_lambda: {output} for {args.runtime} on {args.architecture}: "
        f"{output.stat().st_size / 1e6:.1f} MB zipped, {unzipped / 1e6:.1f} MB unzipped"
    )


if __name__ == "__main__":
    main()
