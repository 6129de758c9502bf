"""Fixtures for the SDK's offline tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from .harness import Clock, Harness
from .vendor import BareVendor


@pytest.fixture
def vendor() -> BareVendor:
    return BareVendor()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def harness(tmp_path: Path, vendor: BareVendor, clock: Clock) -> Harness:
    return Harness(tmp_path, vendor, clock)
