"""Typed domain errors with stable codes.

Every error a person or an integrator can cause is a subclass of
`LendcoreError` with a `code` that never changes once released: clients match
on the code, people read the message. The API maps `http_status` to the
response, the CLI prints `error[CODE]: message` on one line and exits non-zero.
"""

from __future__ import annotations

from typing import Any, ClassVar


class LendcoreError(Exception):
    """Base of every domain error. Subclasses set `code` and `http_status`."""

    code: ClassVar[str] = "LENDCORE_ERROR"
    http_status: ClassVar[int] = 400

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def __str__(self) -> str:
        return self.message

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "details": self.details}


class InvalidInput(LendcoreError):
    """Input that does not have the right form (a parse failure, a bad option)."""

    code = "INVALID_INPUT"
    http_status = 422


class NotFound(LendcoreError):
    code = "NOT_FOUND"
    http_status = 404


class Conflict(LendcoreError):
    code = "CONFLICT"
    http_status = 409


# --- money -------------------------------------------------------------------


class UnknownCurrency(InvalidInput):
    code = "CURRENCY_UNKNOWN"


class CurrencyMismatch(InvalidInput):
    code = "CURRENCY_MISMATCH"


class InvalidAmount(InvalidInput):
    code = "AMOUNT_INVALID"


class TooManyDecimals(InvalidAmount):
    code = "AMOUNT_TOO_PRECISE"


class NonPositiveAmount(InvalidAmount):
    code = "AMOUNT_NOT_POSITIVE"


# --- dates and calendars -----------------------------------------------------


class UnknownDayCount(InvalidInput):
    code = "DAY_COUNT_UNKNOWN"


class UnknownCalendar(InvalidInput):
    code = "CALENDAR_UNKNOWN"


class UnknownBusinessDayConvention(InvalidInput):
    code = "BUSINESS_DAY_CONVENTION_UNKNOWN"


class InvalidDate(InvalidInput):
    code = "DATE_INVALID"


class BusinessDateBackwards(Conflict):
    code = "BUSINESS_DATE_BACKWARDS"


class ValueDateInFuture(InvalidInput):
    code = "VALUE_DATE_IN_FUTURE"


# --- ledger ------------------------------------------------------------------


class AccountNotFound(NotFound):
    code = "ACCOUNT_NOT_FOUND"


class AccountExists(Conflict):
    code = "ACCOUNT_EXISTS"


class AccountClosed(Conflict):
    code = "ACCOUNT_CLOSED"


class AccountNotEmpty(Conflict):
    code = "ACCOUNT_NOT_EMPTY"


class InvalidAccount(InvalidInput):
    code = "ACCOUNT_INVALID"


class EntryUnbalanced(InvalidInput):
    code = "ENTRY_UNBALANCED"


class InvalidEntry(InvalidInput):
    code = "ENTRY_INVALID"


class EntryNotFound(NotFound):
    code = "ENTRY_NOT_FOUND"


class EntryAlreadyReversed(Conflict):
    code = "ENTRY_ALREADY_REVERSED"


class EntryIsReversal(Conflict):
    code = "ENTRY_IS_REVERSAL"


class IdempotencyConflict(Conflict):
    code = "IDEMPOTENCY_KEY_REUSED"


class BalanceConstraintViolated(Conflict):
    code = "BALANCE_CONSTRAINT_VIOLATED"


class HoldNotFound(NotFound):
    code = "HOLD_NOT_FOUND"


class HoldExceeded(Conflict):
    code = "HOLD_EXCEEDED"


class HoldResolved(Conflict):
    code = "HOLD_ALREADY_RESOLVED"


class HoldExpired(Conflict):
    code = "HOLD_EXPIRED"


# --- storage -----------------------------------------------------------------


class SchemaOutdated(LendcoreError):
    code = "SCHEMA_OUTDATED"
    http_status = 503


class DatabaseUnavailable(LendcoreError):
    code = "DATABASE_UNAVAILABLE"
    http_status = 503
