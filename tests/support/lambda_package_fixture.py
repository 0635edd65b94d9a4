"""The `lambda_package` fixture, a pytest plugin: test modules that need the Lambda package and
its CloudFormation template list this module in `pytest_plugins`."""

from __future__ import annotations

from pathlib import Path

import pytest

from support.lambda_package import PACKAGE_DIR, ensure_package


@pytest.fixture(scope="session")
def lambda_package() -> Path:
    """The directory `osls package` wrote: the zip, the CloudFormation template, osls's state;
    built at most once per session."""
    ensure_package()
    return PACKAGE_DIR
