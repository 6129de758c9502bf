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

# Values the console shows as they are in the API (delivery, validity kind, device status).
DELIVERIES = (N_("device"), N_("cloud"), N_("seat_pool"))
VALIDITY_KINDS = (
    N_("perpetual"),
    N_("fixed_end"),
    N_("days_from_issue"),
    N_("days_from_activation"),
)
DEVICE_STATUSES = (N_("active"), N_("blacklisted"))
# What the console shows for a license after a vendor action ("Done: the license is …").
LICENSE_ACTIONS_DONE = (N_("resumed"), N_("extended"))

# Flag kinds are stored with underscores; the pages show them with spaces.
DEVICE_FLAGS = (
    N_("any"),
    N_("clone suspected"),
    N_("replay suspected"),
    N_("manipulation suspected"),
)
STAFF_ROLES = (N_("admin"), N_("sales"), N_("support"), N_("read-only"))
SIGNING_KEY_STATUSES = (N_("current"), N_("previous"), N_("retired"))
WEBHOOK_DELIVERY_STATUSES = (N_("pending"), N_("delivered"), N_("failed"))
