"""Words the pages show for values of the domain (license states, deliveries), marked
for translation: a template shows ``_(state)``."""

from __future__ import annotations

from licentia.server.web.errors import N_

LICENSE_STATES = (
    N_("available"),
    N_("activated"),
    N_("returned"),
    N_("suspended"),
    N_("withdrawn"),
    N_("expired"),
    N_("replaced"),
)
