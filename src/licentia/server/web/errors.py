"""Errors on pages: every domain error with its stable code and a human sentence, next
to the field or action it concerns; an error page for anything a handler did not
expect, never a stack trace and never a blank page.

The sentences are keyed by the error's code and translated; a code without a sentence
here shows the service's own message. A service's message that carries more than its
code's sentence (which field rule broke, which feature is unknown) has a translated
sentence of its own in DETAILS; any other English message is shown only to a visitor
reading English, never in brackets after a sentence that says the same.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from licentia.domain.errors import (
    AuthenticationError,
    ConflictError,
    LicentiaError,
    LoginThrottledError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    ServerBusyError,
    ValidationError,
)
from licentia.formats.jws import SignatureInvalidError

log = logging.getLogger("licentia.web")


def N_(message: str) -> str:  # noqa: N802 - gettext's name for "mark for translation only"
    return message


SENTENCES: dict[str, str] = {
    "TICKET_CODE_INVALID": N_("This is not a valid ticket code."),
    "TICKET_NOT_FOUND": N_("No ticket has this code. Check it against the one you received."),
    "UNAUTHENTICATED": N_("Wrong e-mail or password."),
    "LOGIN_THROTTLED": N_("Too many failed logins. Wait a few minutes before trying again."),
    "RATE_LIMITED": N_(
        "Too many requests came from your network or session. Wait a moment, then try again."
    ),
    "LOGIN_LOCKED": N_(
        "This account is locked after too many failed logins, even for the right password."
        " Wait as long as it says, or ask your administrator to unlock it."
    ),
    "FORBIDDEN": N_("You are not allowed to do this."),
    "LOGINS_BUSY": N_("Many people are logging in right now. Try again in a moment."),
    "FAMILY_BUSY": N_(
        "Many requests like this one are being answered right now. Try again in a moment."
    ),
    "CSRF_FAILED": N_("This form has expired or did not come from this site. Reload the page."),
    "NOT_FOUND": N_("This page or object does not exist, or is not yours to see."),
    "VALIDATION_FAILED": N_("Please correct this value."),
    "COLOUR_INVALID": N_("Write a colour as #rrggbb, for example #1d4f7a."),
    "COLOUR_CONTRAST_TOO_LOW": N_("This colour is too light: text on it would be hard to read."),
    "LOGO_INVALID": N_("A logo is a PNG, SVG, JPEG or WebP image of at most 64 KiB."),
    "NO_LICENSE_AVAILABLE": N_("Every license of this ticket is already in use."),
    "DEVICE_BLACKLISTED": N_("This computer is blocked by the vendor."),
    "DEVICE_FLAGGED": N_("This computer is under review by the vendor. Contact support."),
    "SIGNATURE_INVALID": N_("This file is damaged or was not made by the Licentia software."),
    "FILE_MISSING": N_("Choose the file to upload."),
    "DEVICE_UNKNOWN": N_(
        "This computer has not been activated here yet. Its first request file needs the"
        " ticket code: make the request again on the computer with --ticket CODE"
        " (licentia device request FILE --ticket CODE) and upload the new file."
    ),
    "RECEIPT_MISMATCH": N_(
        "This receipt does not match the update we issued. Upload the newest receipt."
    ),
    "REQUEST_EXPIRED": N_("This file is too old. Make a new one on the computer and upload it."),
    "TRANSFER_LIMIT_REACHED": N_("This license has been moved as often as its terms allow."),
    "CHURN_LIMIT_REACHED": N_(
        "This license has been activated and returned as often as its terms allow for now."
        " It can be activated or returned again when the period ends."
    ),
    "LICENSE_NOT_ON_DEVICE": N_("This license is not on that computer."),
    "FINGERPRINT_MISMATCH": N_("This file comes from a different computer than the one activated."),
    "EXPIRED": N_("The free licenses of this ticket have expired."),
    "TICKET_REQUIRED": N_(
        "This request carries no ticket code. Make it again with the ticket code."
    ),
    "WRONG_DELIVERY": N_(
        "This license is not delivered this way: single computers, cloud containers and "
        "seat pools each take their own licenses."
    ),
    "ALREADY_REDEEMED": N_("These licenses are in another cloud container already."),
    "ASSIGNMENT_LIMIT_REACHED": N_(
        "Every place of this license is named: remove a name first to free one."
    ),
    "ASSIGNMENT_NOT_FOUND": N_("This license is not named to that person (any more)."),
    "VM_NOT_ALLOWED": N_("This license may not run in a virtual machine."),
    "ALREADY_EXISTS": N_("This is taken already: choose another."),
    "UNKNOWN_FEATURE": N_("The product has no such feature."),
    "TOO_MANY_FEATURES": N_("A product has at most 256 features."),
    "CUSTOM_DATA_TOO_LARGE": N_("Protected data is at most 16 KiB of JSON."),
    "UNKNOWN_SKU": N_("There is no template with this SKU."),
    "END_DATE_PASSED": N_("This end date has passed: every license would be expired at once."),
    "DATE_OUT_OF_RANGE": N_("This date is too far in the future."),
    "ORDER_TOO_LARGE": N_("An order holds at most 20,000 licenses, all its lines together."),
    "ORDER_LINE_CONFLICT": N_("This order already has this line, with another SKU or quantity."),
    "ORDER_CUSTOMER_CONFLICT": N_("This order belongs to another customer."),
    "EMAIL_INVALID": N_("This is not an e-mail address."),
    "MAIL_NOT_SENT": N_("The mail server did not take the message. Try again later."),
    "LEASE_NOT_FOUND": N_("This seat is free already, or it is not one of this container's."),
    "NO_COUNTER": N_("This license counts no units."),
    "ILLEGAL_TRANSITION": N_("The license's state does not allow this now."),
    "NOT_TIME_LIMITED": N_("This license never expires, so there is nothing to extend."),
    "KEY_IS_CURRENT": N_("The current signing key cannot be retired: rotate first."),
    "NO_SIGNING_KEY": N_("This vendor has no signing key yet: rotate to make one."),
    "LAST_ADMIN": N_("The vendor would be left without an active admin."),
    "ALREADY_ACTIVE": N_("This colleague has set a password already or is disabled."),
    "LINK_INVALID": N_("This link is unknown, used already or expired. Ask for a new one."),
    "BODY_TOO_LARGE": N_("This form or file is too large for this page."),
    "TOTP_REQUIRED": N_("Type the code of your authenticator app."),
    "TOTP_INVALID": N_("This code is wrong or was used already. Type the current one."),
    "TOTP_ENROLMENT_REQUIRED": N_("Turn two-step login on first: the operator requires it."),
    "TOTP_ALREADY_ON": N_("Two-step login is on already."),
    "TOTP_NOT_ENROLLING": N_("Set up your authenticator app first."),
    "TOTP_REQUIRED_BY_OPERATOR": N_(
        "The operator requires two-step login of vendor admins: it cannot be turned off."
    ),
    "PASSWORD_WRONG": N_("This is not your password."),
    "PASSWORDS_DIFFER": N_("The two passwords differ: type the same one in both fields."),
    "ERROR": N_("This cannot be done now: the code names the reason."),
    "INTERNAL_ERROR": N_("Something went wrong on our side. It has been logged; try again later."),
}


# The services' messages that say more than their code's sentence, as sentences of
# their own: a pattern of the message (named groups fill the sentence's placeholders).
DETAILS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), sentence)
    for pattern, sentence in (
        (
            r"symbol (?P<n>\d+) \('(?P<c>.*)'\) is not used in ticket codes",
            N_("Symbol %(n)s (%(c)s) is not used in ticket codes."),
        ),
        (
            r"a ticket code has 25 symbols in groups of five, not (?P<n>\d+)",
            N_("A ticket code has 25 symbols; this one has %(n)s."),
        ),
        (
            r"this ticket code has a typo: its check symbol does not match",
            N_(
                "This code has a typo: its check symbol does not match. Compare each group"
                " with the code you received."
            ),
        ),
        (r"wrong vendor, e-mail or password", N_("Wrong vendor, e-mail or password.")),
        (r"a seat pool needs 'seats'", N_("A seat pool needs a number of seats.")),
        (r"seats cannot exceed (?P<n>\d+)", N_("A seat pool has at most %(n)s seats.")),
        (r"'.*' is not a whole number", N_("Write a whole number.")),
        (r"write a whole number of days", N_("Write a whole number of days.")),
        (r"limit is a whole number", N_("Write a whole number.")),
        (r"write a date as YYYY-MM-DD", N_("Write a date as YYYY-MM-DD.")),
        (r"protected data is a JSON object", N_("Protected data is a JSON object.")),
        (
            r"refresh_days cannot exceed lease_days",
            N_("The refresh interval cannot be longer than the offline lease."),
        ),
        (
            r"max_borrow_days only applies to seat pools",
            N_("Only seats of a seat pool can be borrowed: leave this empty."),
        ),
        (
            r"churn_limit only applies to device licenses",
            N_("Only licenses on a single computer have this limit: leave it empty."),
        ),
        (r"k cannot exceed n", N_("The factors that must match cannot exceed the factors.")),
        (r"k and n go together", N_("Give both numbers of factors, or a preset.")),
        (r"give either a preset or k and n", N_("Give either a preset or both numbers.")),
        (
            r"end_date is required for fixed_end validity and only for it",
            N_("A fixed end date needs the date, and only that validity takes one."),
        ),
        (
            r"days is required for days_from_\* validity and only for it",
            N_("A validity of days needs the number of days, and only it takes one."),
        ),
        (
            r"days is required for a period of days and only for it",
            N_("A period of days needs the number of days, and only it takes one."),
        ),
        (
            r"a subscription sets the validity itself: leave it perpetual",
            N_("A subscription sets the validity itself: leave it unlimited."),
        ),
        (
            r"confirm that this cannot be undone",
            N_("Tick the box to confirm: this cannot be undone."),
        ),
        (
            r"confirm that the computers registered now must register again",
            N_("Tick the box to confirm that the computers must register again."),
        ),
        (
            r"a name has 1 to (?P<n>\d+) characters",
            N_("Give it a name of 1 to %(n)s characters."),
        ),
        (r"choose the template's product", N_("Choose the template's product.")),
        (r"choose a file", N_("Choose the file to upload.")),
        (r"an order needs at least one line", N_("An order needs at least one line.")),
        (r"quantity must be 1\.\.(?P<n>\d+)", N_("A quantity is between 1 and %(n)s.")),
        (r"units must be positive", N_("Write a number of units above zero.")),
        (
            r"product '(?P<product>[^']*)' has no feature '(?P<feature>[^']*)'",
            N_("Product %(product)s has no feature %(feature)s."),
        ),
        (r"template (?P<sku>.+) not found", N_("There is no template %(sku)s.")),
        (r"no template with SKU '(?P<sku>[^']*)'", N_("There is no template with SKU %(sku)s.")),
        (
            r"text in a request may not contain the NUL character \(U\+0000\)",
            N_(
                "A field holds the invisible NUL character, which no text may hold. Type the"
                " text again instead of pasting it, and send the form again."
            ),
        ),
    )
)


@dataclass(frozen=True)
class Problem:
    """One error as a page shows it."""

    code: str
    sentence: str
    field: str | None = None


@dataclass
class Problems:
    """The errors of one form: by field, and for the form as a whole."""

    by_field: dict[str, Problem] = field(default_factory=dict)
    general: list[Problem] = field(default_factory=list)

    def add(self, problem: Problem) -> None:
        if problem.field:
            self.by_field.setdefault(problem.field, problem)
        else:
            self.general.append(problem)

    def __bool__(self) -> bool:
        return bool(self.by_field or self.general)


def problem_of(
    error: LicentiaError, gettext: Callable[[str], str], *, field: str | None = None
) -> Problem:
    """The page's view of a domain error; ``field`` overrides the one it names."""
    named = field or error.details.get("field")
    return Problem(error.code, sentence_of(error.code, error.message, gettext), named)


def sentence_of(code: str, message: str, gettext: Callable[[str], str]) -> str:
    """The sentence a page shows for an error: the message's own (DETAILS), else the
    code's; the English message itself where it says more than a generic sentence and
    the visitor reads English."""
    for pattern, sentence in DETAILS:
        found = pattern.fullmatch(message)
        if found is not None:
            return str(gettext(sentence)) % found.groupdict()
    if code in SENTENCES and code not in _GENERIC:
        return str(gettext(SENTENCES[code]))
    if _reads_english(gettext):
        return _capitalised(message)
    return str(gettext(SENTENCES[code] if code in SENTENCES else SENTENCES["ERROR"]))


# Codes whose sentence says less than the service's message ("Please correct this
# value."): shown only to a visitor whose language has no sentence of the message.
_GENERIC = frozenset({"VALIDATION_FAILED"})


def _reads_english(gettext: Callable[[str], str]) -> bool:
    """Whether the catalogue in force is the English one (it translates nothing)."""
    probe = SENTENCES["VALIDATION_FAILED"]
    return str(gettext(probe)) == probe


def _capitalised(message: str) -> str:
    text = message[:1].upper() + message[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


def unexpected(error: Exception, path: str) -> Problem:
    log.error("unexpected error on page %s", path, exc_info=error)
    return Problem("INTERNAL_ERROR", SENTENCES["INTERNAL_ERROR"])


_STATUS: tuple[tuple[type[Exception], int], ...] = (
    (LoginThrottledError, 429),
    (RateLimitedError, 429),
    (ServerBusyError, 503),
    (ValidationError, 422),
    (SignatureInvalidError, 422),  # an uploaded file that is no signed message
    (AuthenticationError, 401),
    (PermissionDeniedError, 403),
    (NotFoundError, 404),
    (ConflictError, 409),
)


def status_of(error: Exception) -> int:
    """The HTTP status of a page that shows ``error`` (the page, not an API answer)."""
    return next((status for kind, status in _STATUS if isinstance(error, kind)), 500)
