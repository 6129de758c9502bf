"""How ``licentia serve`` configures uvicorn from the settings an operator gives."""

from __future__ import annotations

import pytest
import uvicorn

from licentia.cli.server.commands import APP, uvicorn_options
from licentia.server.settings import Settings


def _config(settings: Settings) -> uvicorn.Config:
    return uvicorn.Config(APP, **uvicorn_options(settings, access_log=False))


def test_a_busy_worker_gets_thirty_seconds_to_answer_its_supervisor() -> None:
    # uvicorn's own default (5 s) restarted healthy workers of a loaded machine.
    assert _config(Settings()).timeout_worker_healthcheck == 30


def test_the_operator_sets_the_workers_healthcheck(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LICENTIA_WORKER_HEALTHCHECK_SECONDS", "120")
    assert _config(Settings()).timeout_worker_healthcheck == 120


def test_a_healthcheck_of_zero_seconds_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LICENTIA_WORKER_HEALTHCHECK_SECONDS", "0")
    with pytest.raises(ValueError, match="worker_healthcheck_seconds"):
        Settings()
