"""How many password checks a process runs at once by default: half the cores it may
run on, at least one (docs/operations.md, ``LICENTIA_PASSWORD_CHECKS``)."""

from __future__ import annotations

import os

import pytest

from licentia.server import settings as settings_module
from licentia.server.settings import Settings


@pytest.mark.parametrize(("cores", "checks"), [(1, 1), (2, 1), (3, 1), (8, 4), (64, 32)])
def test_half_the_cores_the_process_may_run_on_at_least_one(
    monkeypatch: pytest.MonkeyPatch, cores: int, checks: int
) -> None:
    monkeypatch.delenv("LICENTIA_PASSWORD_CHECKS", raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cores)), raising=False)
    assert settings_module.half_the_cores() == checks
    assert Settings().password_checks == checks


def test_the_operator_sets_the_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LICENTIA_PASSWORD_CHECKS", "6")
    assert Settings().password_checks == 6
    monkeypatch.setenv("LICENTIA_PASSWORD_CHECKS", "0")
    with pytest.raises(ValueError, match="password_checks"):
        Settings()
