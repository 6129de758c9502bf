"""Start-up: whole fresh processes, each next to its reference in the same run.

- ``licentia-activate --help`` and ``licentia device status --help`` next to a process
  that only imports typer and rich (goal: at most 1.5 times);
- an application's first offline check (``import licentia.client``, open an activated
  store, ``require()``) next to a process that only imports cryptography's Ed25519 and
  verifies one signature (goal: at most 2 times).

The processes run interleaved, ``rounds`` times each, and the figure is each one's
fastest run: on a shared machine the slower runs measure the neighbours. They run as
an installed application does, with their modules' bytecode cached (a first round
writes it, even where PYTHONDONTWRITEBYTECODE is set). The store is
activated beforehand with a signed update made here (no server needed), on this
machine's own fingerprint, as the application would find it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from licentia.client import LicenseClient
from licentia.formats.device import device_id, ed25519_from_jwk, state_hash, unverified_claims
from licentia.formats.document_types import LICENSE_TYP, UPDATE_TYP
from licentia.formats.jws import public_jwk, sign_document

HELP_GOAL_RATIO = 1.5
FIRST_CHECK_GOAL_RATIO = 2.0
VENDOR, KID, PRODUCT = "bench", "bench-1", "BENCH"

CLI_REFERENCE = "import typer, rich"
VERIFY_REFERENCE = """
import sys
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(sys.argv[1]))
key.verify(bytes.fromhex(sys.argv[2]), sys.argv[3].encode())
"""
FIRST_CHECK = """
import json, sys
from pathlib import Path
from licentia.client import LicenseClient
keys = json.loads(Path(sys.argv[2]).read_text())
LicenseClient(None, "bench", keys, store_dir=Path(sys.argv[1])).require("BENCH")
"""


@dataclass(frozen=True)
class StartupFigures:
    """Fastest wall-clock seconds of each process."""

    typer_rich: float
    activate_help: float
    device_help: float
    verify_one: float
    first_check: float


def measure_startup(rounds: int = 15) -> StartupFigures:
    with tempfile.TemporaryDirectory(prefix="licentia-startup-") as tmp:
        root = Path(tmp)
        keys_file, store = _activated_store(root)
        signer = Ed25519PrivateKey.generate()
        message = "licentia start-up"
        raw = signer.public_key().public_bytes_raw().hex()
        signature = signer.sign(message.encode()).hex()
        bin_dir = Path(sys.executable).parent
        commands = {
            "typer_rich": [sys.executable, "-c", CLI_REFERENCE],
            "activate_help": [str(bin_dir / "licentia-activate"), "--help"],
            "device_help": [str(bin_dir / "licentia"), "device", "status", "--help"],
            "verify_one": [sys.executable, "-c", VERIFY_REFERENCE, raw, signature, message],
            "first_check": [sys.executable, "-c", FIRST_CHECK, str(store), str(keys_file)],
        }
        # As installed: pip compiles every module at install, so the processes may write
        # (and then read) their bytecode, and a first round, not counted, writes it.
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        for command in commands.values():
            _run(command, env)
        best = dict.fromkeys(commands, float("inf"))
        for _ in range(rounds):
            for name, command in commands.items():
                best[name] = min(best[name], _run(command, env))
    return StartupFigures(**best)


def _run(command: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, env=env)
    return time.perf_counter() - start


def _activated_store(root: Path) -> tuple[Path, Path]:
    """A device store holding one license of PRODUCT, and the vendor's JWKS file."""
    key = Ed25519PrivateKey.generate()
    keys_file = root / "jwks.json"
    keys_file.write_text(json.dumps({"keys": [public_jwk(key.public_key(), KID)]}))
    store = root / "store"
    client = LicenseClient(None, VENDOR, json.loads(keys_file.read_text()), store_dir=store)
    request = client.create_offline_request(root / "request.jws")
    update = root / "update.jws"
    update.write_text(_update(key, unverified_claims(request.read_text().strip())))
    client.import_update(update)
    client.close()
    return keys_file, store


def _update(key: Ed25519PrivateKey, request: Any) -> str:
    """The update a vendor would answer ``request`` with: one license, a month's lease."""
    device = device_id(ed25519_from_jwk(request["device_key"]))
    now = datetime.now(UTC)
    epoch = int(now.timestamp())
    lease = int((now + timedelta(days=30)).timestamp())
    license_claims = {
        "iss": VENDOR,
        "sub": "L-1",
        "aud": device,
        "cnf": {"jkt": device},
        "iat": epoch,
        "nbf": epoch,
        "exp": lease,
        "ver": 1,
        "state": "activated",
        "product": PRODUCT,
        "features": ["run"],
        "fingerprint": request["fingerprint"],
        "lease_until": lease,
        "refresh_after": epoch + 7 * 86400,
        "valid_until": None,
        "maintenance_until": None,
        "options": {"fingerprint_tolerance": {"preset": "medium"}, "vm_policy": "allow"},
        "public_data": None,
        "protected_data": None,
    }
    document = sign_document(license_claims, key, kid=KID, typ=LICENSE_TYP)
    update = {
        "iss": VENDOR,
        "aud": device,
        "iat": epoch,
        "seq": 1,
        "status": "active",
        "licenses": [document],
        "removed": [],
        "state": state_hash([("L-1", 1)]),
    }
    return sign_document(update, key, kid=KID, typ=UPDATE_TYP)


def rows(figures: StartupFigures) -> list[dict[str, Any]]:
    """The start-up figures as rows of the benchmark table."""
    cli = figures.typer_rich
    check = figures.first_check / figures.verify_one
    return [
        {
            "figure": f"start-up: {name}",
            "value": f"{seconds * 1e3:.0f} ms vs typer+rich {cli * 1e3:.0f} ms "
            f"(x{seconds / cli:.2f})",
            "goal": f"<= x{HELP_GOAL_RATIO}",
            "met": seconds / cli <= HELP_GOAL_RATIO,
        }
        for name, seconds in (
            ("licentia-activate --help", figures.activate_help),
            ("licentia device status --help", figures.device_help),
        )
    ] + [
        {
            "figure": "start-up: first offline check",
            "value": f"{figures.first_check * 1e3:.0f} ms vs one Ed25519 verify "
            f"{figures.verify_one * 1e3:.0f} ms (x{check:.2f})",
            "goal": f"<= x{FIRST_CHECK_GOAL_RATIO}",
            "met": check <= FIRST_CHECK_GOAL_RATIO,
        }
    ]


if __name__ == "__main__":
    for row in rows(measure_startup()):
        print(f"{row['figure']}: {row['value']} (goal {row['goal']}, met: {row['met']})")
