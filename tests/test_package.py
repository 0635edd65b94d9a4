"""The Lambda package as `osls package` builds it: what is inside .serverless/todo-api.zip.

The package is built once per session, when missing or older than its sources
(support/lambda_package_fixture.py); needs node, npm, network access to PyPI and a Python of the Lambda
runtime's version (python3.12), but no AWS credentials and no Docker. Select these tests alone
with `pytest -m package`.
"""

from __future__ import annotations

import json
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

import pytest

from support.lambda_package import ROOT, STATE_PATH, TEMPLATE_PATH, ZIP_PATH

# One worker runs it under pytest-xdist: the build is shared, not waited for twice, and made
# before tests/test_serverless_offline.py (same group) serves it.
pytestmark = [pytest.mark.package, pytest.mark.xdist_group("lambda-package")]
pytest_plugins = ["support.lambda_package_fixture"]

# The unzipped size measured at 79.3 MB (handler, todo/, migrations/, requirements.txt's wheels and
# their byte code; cryptography, for the bearer tokens, is 14.6 MB of it), plus about 15 %. Lambda itself
# allows 250 MB; this budget is here to notice a dependency or a stray directory that slips in.
UNZIPPED_BUDGET_BYTES = 92_000_000

# Magic number of the byte code of each Lambda Python runtime (importlib.util.MAGIC_NUMBER).
PYC_MAGIC = {"3.12": 3531, "3.13": 3571}
EM_AARCH64 = 183
EM_X86_64 = 62
ELF_MACHINES = {"arm64": EM_AARCH64, "x86_64": EM_X86_64}

FORBIDDEN_PARTS = {
    "tests", "test", "node_modules", ".venv", "venv", ".serverless", "build", ".git",
    ".pytest_cache", ".hypothesis", ".mypy_cache", ".ruff_cache", ".github", ".agents",
}
FORBIDDEN_ROOT_FILES = {
    "serverless.yml", "package.json", "package-lock.json", "requirements.txt", ".env",
    ".env.example", ".gitignore", ".npmrc", "conftest.py",
}


@pytest.fixture(scope="module")
def package(lambda_package: Path) -> Iterator[zipfile.ZipFile]:
    with zipfile.ZipFile(ZIP_PATH) as archive:
        yield archive


@pytest.fixture(scope="module")
def function_properties(package: zipfile.ZipFile) -> dict:
    template = json.loads(TEMPLATE_PATH.read_text())
    functions = [
        resource["Properties"]
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::Lambda::Function"
    ]
    assert len(functions) == 1
    return functions[0]


@pytest.fixture(scope="module")
def python_version(function_properties: dict) -> str:
    runtime = function_properties["Runtime"]
    match = re.fullmatch(r"python(3\.\d+)", runtime)
    assert match, runtime
    return match.group(1)


def _names(package: zipfile.ZipFile) -> list[str]:
    return [info.filename for info in package.infolist() if not info.is_dir()]


def _pyc_name(source: str, python_version: str) -> str:
    path = PurePosixPath(source)
    tag = "cpython-" + python_version.replace(".", "")
    return str(path.parent / "__pycache__" / f"{path.stem}.{tag}.pyc").removeprefix("./")


def _pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        match = re.match(r"\s*([A-Za-z0-9_.\-]+)\s*==\s*([^\s;#]+)", line)
        if match:
            pins[_normalize(match.group(1))] = match.group(2)
    return pins


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _elf_machine(data: bytes) -> int:
    assert data[:4] == b"\x7fELF", "not an ELF file"
    assert data[4] == 2 and data[5] == 1, "expected a 64-bit little-endian ELF file"
    return int.from_bytes(data[18:20], "little")


def test_function_is_the_packaged_handler_on_arm64(function_properties: dict) -> None:
    assert function_properties["Handler"] == "handler.handler"
    assert function_properties["Architectures"] == ["arm64"]
    assert function_properties["Runtime"] in {"python3.12", "python3.13"}
    settings = function_properties["Environment"]["Variables"]
    assert settings["DB_POOL_SIZE"] == "1"
    assert {"DATABASE_URL", "LOG_LEVEL", "DB_CONNECT_TIMEOUT", "DB_CONNECT_BUDGET"} <= settings.keys()
    # `osls deploy` (and `osls deploy --package .serverless`) uploads this very zip.
    state = json.loads(STATE_PATH.read_text())
    assert state["package"]["artifact"] == ZIP_PATH.name


def test_the_connection_string_is_a_reference_resolved_at_deploy_time(function_properties: dict) -> None:
    settings = function_properties["Environment"]["Variables"]
    assert settings["DATABASE_URL"] == "{{resolve:secretsmanager:todo-api/dev/database-url}}"
    assert "postgresql" not in TEMPLATE_PATH.read_text()


def test_handler_and_app_modules_are_at_the_root(package: zipfile.ZipFile) -> None:
    names = set(_names(package))
    assert "handler.py" in names
    sources = sorted(
        p.relative_to(ROOT).as_posix()
        for folder in ("todo", "migrations")
        for p in (ROOT / folder).rglob("*.py")
        if "__pycache__" not in p.parts
    )
    assert "todo/__init__.py" in sources and "migrations/env.py" in sources
    for source in sources:
        assert source in names, f"{source} missing from the package"
        # The packaged module is the repository's current one, not a stale build.
        assert package.read(source) == (ROOT / source).read_bytes(), f"{source} differs from the repository"
    assert package.read("handler.py") == (ROOT / "handler.py").read_bytes()


def test_dependencies_are_exactly_the_pinned_requirements(package: zipfile.ZipFile) -> None:
    installed = {}
    for name in _names(package):
        if re.fullmatch(r"[^/]+\.dist-info/METADATA", name):
            fields = dict(
                line.split(": ", 1)
                for line in package.read(name).decode().split("\n\n", 1)[0].splitlines()
                if ": " in line
            )
            installed[_normalize(fields["Name"])] = fields["Version"]
    assert installed == _pins()


def test_psycopg_binary_is_built_for_aarch64(package: zipfile.ZipFile) -> None:
    extensions = [n for n in _names(package) if re.fullmatch(r"psycopg_binary/[^/]+\.so", n)]
    assert any(PurePosixPath(n).name.startswith("_psycopg.") for n in extensions), extensions
    for name in extensions:
        assert "aarch64-linux-gnu" in name, name
        assert _elf_machine(package.read(name)) == EM_AARCH64, f"{name} is not an aarch64 ELF file"


def test_every_shared_library_matches_the_architecture(
    package: zipfile.ZipFile, function_properties: dict
) -> None:
    machine = ELF_MACHINES[function_properties["Architectures"][0]]
    libraries = [n for n in _names(package) if re.search(r"\.so(\.[0-9.]+)?$", n)]
    assert libraries
    wrong = [n for n in libraries if _elf_machine(package.read(n)) != machine]
    assert not wrong


def test_byte_code_is_precompiled_for_the_runtime(package: zipfile.ZipFile, python_version: str) -> None:
    names = _names(package)
    sources = [n for n in names if n.endswith(".py")]
    pycs = {n for n in names if n.endswith(".pyc")}
    expected = {_pyc_name(source, python_version) for source in sources}
    # Every module has its byte code, and there is no other byte code (another interpreter's, or
    # optimized .opt-1/.opt-2 files that the runtime never reads).
    assert not expected - pycs, sorted(expected - pycs)[:10]
    assert not pycs - expected, sorted(pycs - expected)[:10]
    assert not [n for n in names if n.endswith(".pyo")]
    for name in pycs:
        header = package.read(name)[:16]
        assert int.from_bytes(header[:2], "little") == PYC_MAGIC[python_version], name
        assert header[2:4] == b"\r\n"
        # PEP 552 flags: 0b01 = hash-based, not checked against the source. The zip's timestamps
        # are not the sources', so timestamp-based .pyc would be recompiled on every cold start.
        assert int.from_bytes(header[4:8], "little") == 0b01, name


def test_nothing_but_runtime_code_and_dependencies(package: zipfile.ZipFile) -> None:
    names = _names(package)
    assert names, "empty package"
    # Each file is runtime code or belongs to an installed distribution (listed in its RECORD).
    recorded = set()
    for name in names:
        if name.endswith(".dist-info/RECORD"):
            recorded.update(
                line.split(",", 1)[0] for line in package.read(name).decode().splitlines() if line
            )
    for name in names:
        path = PurePosixPath(name)
        assert not FORBIDDEN_PARTS & set(path.parts), name
        assert not (len(path.parts) == 1 and name in FORBIDDEN_ROOT_FILES), name
        assert not path.name.lower().startswith("readme"), name
        assert not name.endswith((".pyi", ".orig", ".log", ".db", ".sqlite", ".DS_Store")), name
        if path.parts[0] in {"handler.py", "todo", "migrations"}:
            continue
        if "__pycache__" in path.parts:
            # byte code written by the build for a module next to it; checked above
            continue
        assert name in recorded, f"{name} is neither runtime code nor part of a dependency"
    top_level = {PurePosixPath(n).parts[0] for n in names}
    assert not {n for n in top_level if n.startswith(".")}, top_level


def test_unzipped_size_is_within_budget(package: zipfile.ZipFile) -> None:
    unzipped = sum(info.file_size for info in package.infolist())
    print(f"package: {ZIP_PATH.stat().st_size:,} bytes zipped, {unzipped:,} bytes unzipped")
    assert unzipped <= UNZIPPED_BUDGET_BYTES, (
        f"{unzipped:,} bytes unzipped, over the budget of {UNZIPPED_BUDGET_BYTES:,}"
    )
