"""License template options: the recipe every license of a SKU is made from.

The options are a value object validated here, once, for every entry point (API,
CLI, demo seed). A rule that is broken names the field so the caller can fix it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Annotated, Any, Final, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from licentia.domain.errors import DateOutOfRangeError
from licentia.domain.licenses import LATEST_VALID_UNTIL
from licentia.domain.subscriptions import SubscriptionPeriod

MAX_SEATS = 100_000
MAX_REMINDER_DAYS = 90  # the longest notice a template can ask for before a license ends
# Custom data is signed into every license document; the JSON readers of documents
# refuse deeper nesting (licentia.formats.jws.MAX_JSON_DEPTH), leave room for the claims.
MAX_CUSTOM_DATA_DEPTH = 16
# ... and is copied into every license issued: an order of many licenses multiplies it.
MAX_PROTECTED_BYTES = 16 * 1024
LAST_END_DATE = (LATEST_VALID_UNTIL - timedelta(days=1)).date()
PositiveDays = Annotated[int, Field(gt=0, le=36_500)]
MaxDevices = Annotated[int, Field(ge=1, le=1000)]


class Delivery(StrEnum):
    DEVICE = "device"
    CLOUD = "cloud"
    SEAT_POOL = "seat_pool"


class SeatCounting(StrEnum):
    PER_USER = "per_user"
    PER_DEVICE = "per_device"
    PER_PROCESS = "per_process"
    EXCLUSIVE = "exclusive"


class ValidityKind(StrEnum):
    PERPETUAL = "perpetual"
    FIXED_END = "fixed_end"
    DAYS_FROM_ISSUE = "days_from_issue"
    DAYS_FROM_ACTIVATION = "days_from_activation"


class OptionRuleError(ValueError):
    """A rule between options is broken; ``field`` names the option to change,
    relative to the model that checks the rule (pydantic keeps this error in the
    ``ctx`` of its error, so the caller can report the field, not just the model)."""

    def __init__(self, field: str, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.field = field
        self.code = code


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Validity(_Strict):
    kind: ValidityKind = ValidityKind.PERPETUAL
    end_date: date | None = None
    days: PositiveDays | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        needs_end = self.kind is ValidityKind.FIXED_END
        needs_days = self.kind in (ValidityKind.DAYS_FROM_ISSUE, ValidityKind.DAYS_FROM_ACTIVATION)
        if needs_end != (self.end_date is not None):
            raise OptionRuleError(
                "end_date", "end_date is required for fixed_end validity and only for it"
            )
        if needs_days != (self.days is not None):
            raise OptionRuleError(
                "days", "days is required for days_from_* validity and only for it"
            )
        if self.end_date is not None and self.end_date > LAST_END_DATE:
            raise OptionRuleError(
                "end_date",
                f"end_date cannot be later than {LAST_END_DATE.isoformat()}",
                code=DateOutOfRangeError.code,
            )
        return self


class FingerprintTolerance(_Strict):
    """How many of the device's fingerprint factors must still match (k of n)."""

    preset: Literal["loose", "medium", "strict"] | None = "medium"
    k: int | None = Field(default=None, ge=1, le=16)
    n: int | None = Field(default=None, ge=1, le=16)

    @model_validator(mode="after")
    def _preset_or_k_of_n(self) -> Self:
        custom = self.k is not None or self.n is not None
        if custom and (self.k is None or self.n is None):
            raise OptionRuleError("k" if self.k is None else "n", "k and n go together")
        if custom and self.k is not None and self.n is not None and self.k > self.n:
            raise OptionRuleError("k", "k cannot exceed n")
        if custom == (self.preset is not None):
            raise OptionRuleError("preset", "give either a preset or k and n")
        return self


class TransferLimit(_Strict):
    returns: int = Field(ge=0, le=1000)
    period_days: PositiveDays


class ChurnLimit(_Strict):
    """At most ``count`` activations and returns of one license within ``days`` days,
    counted from the first of them (then a new period starts with the next one)."""

    count: int = Field(ge=1, le=1000)
    days: PositiveDays


class Subscription(_Strict):
    """Licenses paid one period at a time (``domain/subscriptions.py``): ``period``
    ``monthly``, ``yearly`` or ``days`` (then ``days`` long); ``automatic`` renews them
    each period until cancelled; ``grace_days`` keeps them valid that long past the
    paid end when a renewal is late (a failed payment)."""

    period: SubscriptionPeriod
    days: PositiveDays | None = None
    automatic: bool = False
    grace_days: int = Field(default=0, ge=0, le=365)

    @model_validator(mode="after")
    def _days_for_days(self) -> Self:
        if (self.period is SubscriptionPeriod.DAYS) != (self.days is not None):
            raise OptionRuleError("days", "days is required for a period of days and only for it")
        return self


class CustomData(_Strict):
    public: str | None = Field(default=None, max_length=4096)
    protected: dict[str, object] | None = None
    secret: str | None = Field(default=None, max_length=4096)

    @field_validator("protected")
    @classmethod
    def _shallow(cls, value: dict[str, object] | None) -> dict[str, object] | None:
        if value is not None and _nests_deeper(value, MAX_CUSTOM_DATA_DEPTH):
            raise ValueError(f"protected data nests deeper than {MAX_CUSTOM_DATA_DEPTH} levels")
        return value

    @model_validator(mode="after")
    def _small(self) -> Self:
        if self.protected is not None and _json_size(self.protected) > MAX_PROTECTED_BYTES:
            raise OptionRuleError(
                "protected",
                f"protected data is at most {MAX_PROTECTED_BYTES} bytes of JSON",
                code="CUSTOM_DATA_TOO_LARGE",
            )
        return self


def _json_size(value: object) -> int:
    """The length in bytes of ``value`` as compact JSON (as documents carry it)."""
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


def _nests_deeper(value: object, levels: int) -> bool:
    """Whether lists and objects in ``value`` nest more than ``levels`` deep; stops
    descending at the limit, so a hostile depth costs no more than an allowed one."""
    if isinstance(value, dict):
        children: Iterable[object] = value.values()
    elif isinstance(value, list):
        children = value
    else:
        return False
    return levels == 0 or any(_nests_deeper(child, levels - 1) for child in children)


class TemplateOptions(_Strict):
    validity: Validity = Validity()
    maintenance_days: PositiveDays | None = None
    delivery: Delivery = Delivery.DEVICE
    seats: int | None = Field(default=None, ge=1, le=1_000_000)
    seat_counting: SeatCounting = SeatCounting.PER_USER
    units: int | None = Field(default=None, ge=0, le=10**12)
    lease_days: PositiveDays = 30
    refresh_days: PositiveDays = 7
    max_borrow_days: PositiveDays | None = None
    fingerprint_tolerance: FingerprintTolerance = FingerprintTolerance()
    vm_policy: Literal["allow", "deny"] = "allow"
    transfer_limit: TransferLimit | None = None
    churn_limit: ChurnLimit | None = None
    max_devices: MaxDevices = 3
    seat_lease_seconds: int = Field(default=300, ge=10, le=86_400)
    access_token_seconds: int = Field(default=300, ge=10, le=86_400)
    subscription: Subscription | None = None
    custom_data: CustomData = CustomData()
    # Days before a license's end when ``license.expiring`` is sent (event and mail);
    # 0: never for this template's licenses.
    expiry_reminder_days: int = Field(default=14, ge=0, le=MAX_REMINDER_DAYS)

    @model_validator(mode="after")
    def _coherent(self) -> Self:
        if self.delivery is Delivery.SEAT_POOL and self.seats is None:
            raise OptionRuleError("seats", "a seat pool needs 'seats'")
        if self.refresh_days > self.lease_days:
            raise OptionRuleError("refresh_days", "refresh_days cannot exceed lease_days")
        if self.max_borrow_days is not None and self.delivery is not Delivery.SEAT_POOL:
            raise OptionRuleError("max_borrow_days", "max_borrow_days only applies to seat pools")
        if self.churn_limit is not None and self.delivery is not Delivery.DEVICE:
            raise OptionRuleError("churn_limit", "churn_limit only applies to device licenses")
        if self.subscription is not None and self.validity.kind is not ValidityKind.PERPETUAL:
            raise OptionRuleError(
                "validity.kind", "a subscription sets the validity itself: leave it perpetual"
            )
        if self.seats is not None and self.seats > MAX_SEATS:
            raise OptionRuleError("seats", f"seats cannot exceed {MAX_SEATS}")
        return self


OPTION_DEFAULTS: Final = TemplateOptions()
_DEFAULTS: Final[dict[str, Any]] = OPTION_DEFAULTS.model_dump(mode="json")


class StoredOptions:
    """Typed reads of options as stored (JSON) on a template or a license.

    A license keeps the options its template had when it was issued; an option it
    lacks reads as ``TemplateOptions``' default, so no default is written twice. The
    mapping is read, never copied or validated: hot paths use this on every call.
    """

    __slots__ = ("_raw",)

    def __init__(self, raw: Mapping[str, Any] | None) -> None:
        self._raw: Mapping[str, Any] = raw or {}

    def _value(self, name: str) -> Any:
        value = self._raw.get(name)
        return _DEFAULTS[name] if value is None else value

    @property
    def validity(self) -> dict[str, Any]:
        return dict(self._value("validity"))

    @property
    def delivery(self) -> Delivery:
        return Delivery(self._value("delivery"))

    @property
    def seats(self) -> int | None:
        return _int_or_none(self._value("seats"))

    @property
    def seat_counting(self) -> SeatCounting:
        return SeatCounting(self._value("seat_counting"))

    @property
    def units(self) -> int | None:
        return _int_or_none(self._value("units"))

    @property
    def lease_days(self) -> int:
        return int(self._value("lease_days"))

    @property
    def expiry_reminder_days(self) -> int:
        return int(self._value("expiry_reminder_days"))

    @property
    def refresh_days(self) -> int:
        return int(self._value("refresh_days"))

    @property
    def max_borrow_days(self) -> int | None:
        return _int_or_none(self._value("max_borrow_days"))

    @property
    def fingerprint_tolerance(self) -> dict[str, Any]:
        return dict(self._value("fingerprint_tolerance"))

    @property
    def vm_allowed(self) -> bool:
        return bool(self._value("vm_policy") != "deny")

    @property
    def transfer_limit(self) -> dict[str, Any] | None:
        limit = self._value("transfer_limit")
        return None if limit is None else dict(limit)

    @property
    def churn_limit(self) -> dict[str, Any] | None:
        limit = self._value("churn_limit")
        return None if limit is None else dict(limit)

    @property
    def max_devices(self) -> int:
        return int(self._value("max_devices"))

    @property
    def seat_lease_seconds(self) -> int:
        return int(self._value("seat_lease_seconds"))

    @property
    def access_token_seconds(self) -> int:
        return int(self._value("access_token_seconds"))

    @property
    def subscription(self) -> dict[str, Any] | None:
        terms = self._raw.get("subscription")
        return None if terms is None else dict(terms)


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)


def validity_end(validity: Validity, issued_at: datetime) -> datetime | None:
    """The end of validity known at issue time (None: perpetual or counted from activation)."""
    if validity.kind is ValidityKind.FIXED_END:
        assert validity.end_date is not None
        # Valid through the whole end date, in UTC.
        return datetime.combine(validity.end_date + timedelta(days=1), time.min, tzinfo=UTC)
    if validity.kind is ValidityKind.DAYS_FROM_ISSUE:
        assert validity.days is not None
        return issued_at + timedelta(days=validity.days)
    return None


def end_date_passed(validity: Validity, now: datetime) -> bool:
    """True if ``validity`` has a fixed end that is over by ``now``: a license issued
    now would be expired before anyone could use it."""
    if validity.kind is not ValidityKind.FIXED_END:
        return False
    end = validity_end(validity, now)
    return end is not None and end <= now
