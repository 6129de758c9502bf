"""The ``.licred`` file of a cloud container, as License Central writes it for a
customer admin to download (docs/cloud.md, The ``.licred`` file; the SDK reads it with
``licentia.client.CloudCredential``). A credential is known only at the moment it is
made (only its hash is kept), so a file can be written only then."""

from __future__ import annotations

import json
import re

from licentia.server.cloud.services import IssuedCredential

LICRED_VERSION = 1
MEDIA_TYPE = "application/json"


def licred_file(issued: IssuedCredential, server_url: str, vendor_slug: str) -> str:
    """The file's JSON text: the format version, where License Central answers, the
    vendor, the container and its credential."""
    document = {
        "licred": LICRED_VERSION,
        "server_url": server_url.rstrip("/"),
        "vendor": vendor_slug,
        "container_id": issued.container.id,
        "credential": issued.credential,
    }
    return json.dumps(document, indent=2) + "\n"


def licred_filename(container_name: str) -> str:
    """A file name from the container's name that any system accepts (``team.licred``)."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", container_name).strip("-.") or "container"
    return f"{stem[:60]}.licred"
