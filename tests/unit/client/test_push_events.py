"""The SDK's side of push updates: reading the event stream, and the auto-update's
answer to a push (sync at once) and to no push (poll)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from datetime import timedelta

from licentia.client._autoupdate import AutoUpdater
from licentia.client._push import ServerEvent, read_events

LONG = timedelta(hours=1)


def _wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def test_events_are_read_by_name_and_comments_and_fields_it_ignores_are_skipped() -> None:
    stream = [
        "retry: 3000",
        "event: ready",
        "data: {}",
        "",
        ": ping - 2026-12-03 22:40:00",
        "",
        "event: changed",
        "data: a",
        "data: b",
        "",
        "data:plain",
        "",
    ]
    assert list(read_events(iter(stream))) == [
        ServerEvent("ready", "{}"),
        ServerEvent("changed", "a\nb"),
        ServerEvent("message", "plain"),
    ]


def test_an_event_cut_off_before_its_blank_line_is_not_reported() -> None:
    assert list(read_events(iter(["event: changed", "data: {}"]))) == []


def test_a_push_syncs_at_once_though_nothing_is_due() -> None:
    syncs: list[float] = []
    updater = AutoUpdater(
        lambda: syncs.append(time.monotonic()),
        lambda: 3600.0,
        jitter=LONG,
        max_backoff=LONG,
        check_interval=LONG,
    )
    updater.start()
    try:
        updater.nudge()
        assert _wait_until(lambda: len(syncs) == 1)
        updater.nudge()
        assert _wait_until(lambda: len(syncs) == 2)
    finally:
        updater.stop()
    assert updater.pushed_syncs == 2


def test_without_a_push_stream_it_polls_every_poll_interval() -> None:
    syncs: list[float] = []
    updater = AutoUpdater(
        lambda: syncs.append(time.monotonic()),
        lambda: 3600.0,
        jitter=LONG,
        max_backoff=LONG,
        check_interval=LONG,
        poll_interval=timedelta(milliseconds=20),
    )
    updater.start()
    try:
        assert _wait_until(lambda: len(syncs) >= 3)
    finally:
        updater.stop()
    assert updater.pushed_syncs == 0


def test_a_device_with_nothing_to_sync_is_not_polled() -> None:
    syncs: list[float] = []
    updater = AutoUpdater(
        lambda: syncs.append(time.monotonic()),
        lambda: None,
        jitter=LONG,
        max_backoff=LONG,
        check_interval=timedelta(milliseconds=5),
        poll_interval=timedelta(milliseconds=5),
    )
    updater.start()
    time.sleep(0.1)
    updater.stop()
    assert syncs == []


def test_an_offline_check_loads_nothing_of_push(tmp_path) -> None:
    probe = f"""
import sys
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from licentia.client import LicenseClient, NotActivatedError, Virtualization
client = LicenseClient(
    "https://licentia.example", "acme", {{"k1": Ed25519PrivateKey.generate().public_key()}},
    store_dir={str(tmp_path)!r}, factor_source=lambda: {{"machine_id": "m"}},
    virtualization_probe=lambda: Virtualization(),
)
try:
    client.require("CAD")
except NotActivatedError:
    pass
print(" ".join(sys.modules))
"""
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    loaded = result.stdout.split()
    assert "licentia.client._push" not in loaded and "httpx" not in loaded
