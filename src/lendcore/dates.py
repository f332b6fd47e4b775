"""Dates for lending: day-count conventions, business-day calendars, date helpers.

Everything here is pure. The only outside input is the `holidays` package's
rules, read (and cached) when a calendar first needs a year.

Year fractions are exact `fractions.Fraction`s, never floats: interest is
principal x rate x year fraction, and only the final amount is rounded (see
`money.round_fraction_to_minor`).
"""

from __future__ import annotations

import calendar as _stdlib_calendar
import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from fractions import Fraction
from types import MappingProxyType
from typing import Final

import holidays as _holidays

from lendcore.errors import (
    InvalidDate,
    InvalidInput,
    UnknownBusinessDayConvention,
    UnknownCalendar,
    UnknownDayCount,
)

__all__ = [
    "MAX_BUSINESS_DAY_SEARCH",
    "BusinessDayConvention",
    "Calendar",
    "DayCount",
    "add_months",
    "adjust",
    "business_day_convention",
    "calendar",
    "day_count",
    "day_count_days",
    "parse_date",
    "year_fraction",
]

# --- plain date helpers --------------------------------------------------------


def _check_date(value: date, what: str = "date") -> date:
    # A datetime is a date subclass, but it never equals a date, so it would
    # silently miss every holiday: refuse it instead of guessing a time zone.
    if isinstance(value, datetime) or not isinstance(value, date):
        raise InvalidDate(
            f"{what} must be a date (without time), got {type(value).__name__}",
            value=repr(value),
        )
    return value


_ISO_DATE_RE: Final = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})", re.ASCII)


def parse_date(text: str) -> date:
    """Parse an ISO 8601 calendar date, YYYY-MM-DD only ("2026-07-03")."""
    if not isinstance(text, str):
        raise InvalidDate(f"a date must be text, got {type(text).__name__}", value=repr(text))
    match = _ISO_DATE_RE.fullmatch(text)
    if match is None:
        shown = text if len(text) <= 40 else text[:40] + "..."
        raise InvalidDate(f"{shown!r} is not a date: expected YYYY-MM-DD", value=shown)
    year, month, day = (int(part) for part in match.groups())
    try:
        return date(year, month, day)
    except ValueError as error:
        raise InvalidDate(f"{text} is not a valid date: {error}", value=text) from None


def _last_day_of_month(year: int, month: int) -> int:
    return _stdlib_calendar.monthrange(year, month)[1]


def add_months(d: date, n: int, end_of_month: bool = False) -> date:
    """`d` moved by `n` months (negative goes back), clamped to the month's last day.

    2026-01-31 + 1 month is 2026-02-28 and 2024-01-31 + 1 is 2024-02-29. With
    `end_of_month=True` a date on its month's last day stays on the last day
    (2026-02-28 + 1 month is 2026-03-31), the usual rule for schedules that
    start at month end. Always computed from `d`, never by repeated steps, so
    a schedule built with n = 1, 2, 3... does not drift after a short month.
    """
    _check_date(d)
    if isinstance(n, bool) or not isinstance(n, int):
        raise InvalidInput(f"months must be an int, got {n!r}", months=repr(n))
    month_index = d.year * 12 + (d.month - 1) + n
    year, month_zero = divmod(month_index, 12)
    month = month_zero + 1
    if not 1 <= year <= 9999:
        raise InvalidDate(f"{d.isoformat()} plus {n} months is outside years 1-9999", months=n)
    last = _last_day_of_month(year, month)
    if end_of_month and d.day == _last_day_of_month(d.year, d.month):
        return date(year, month, last)
    return date(year, month, min(d.day, last))


# --- day counts ----------------------------------------------------------------


class DayCount(StrEnum):
    """Day-count conventions (ISDA 2006 Definitions, section 4.16)."""

    ACT_360 = "act/360"
    ACT_365F = "act/365f"
    ACT_ACT = "act/act"  # ISDA variant, 4.16(b)
    THIRTY_360 = "30/360"  # bond basis, 4.16(f)
    THIRTY_E_360 = "30e/360"  # eurobond basis, 4.16(g)


# Accepted spellings after normalisation (lower case, no parentheses, single
# spaces). Deliberately missing:
# * "act/365" and "actual/365": in the 1991/2000 ISDA definitions they mean
#   Actual/Actual, in other places Actual/365 Fixed; an ambiguous name is refused.
# * "act/act icma" and other Actual/Actual variants: they are different rules.
# * "30/360 us" and "30/360 sia": in market use they carry the end-of-February
#   rules of the SIA variant, which `30/360` here does not apply.
# * "30e/360 isda" and "30e+/360": different rules from 30E/360.
_DAY_COUNT_ALIASES: Final[Mapping[str, DayCount]] = MappingProxyType(
    {
        "act/360": DayCount.ACT_360,
        "actual/360": DayCount.ACT_360,
        "a/360": DayCount.ACT_360,
        "french": DayCount.ACT_360,
        "act/365f": DayCount.ACT_365F,
        "act/365 fixed": DayCount.ACT_365F,
        "actual/365f": DayCount.ACT_365F,
        "actual/365 fixed": DayCount.ACT_365F,
        "a/365f": DayCount.ACT_365F,
        "a/365 fixed": DayCount.ACT_365F,
        "english": DayCount.ACT_365F,
        "act/act": DayCount.ACT_ACT,
        "act/act isda": DayCount.ACT_ACT,
        "actual/actual": DayCount.ACT_ACT,
        "actual/actual isda": DayCount.ACT_ACT,
        "a/a isda": DayCount.ACT_ACT,
        "30/360": DayCount.THIRTY_360,
        "30/360 isda": DayCount.THIRTY_360,
        "360/360": DayCount.THIRTY_360,
        "bond basis": DayCount.THIRTY_360,
        "30e/360": DayCount.THIRTY_E_360,
        "30/360e": DayCount.THIRTY_E_360,
        "30/360 e": DayCount.THIRTY_E_360,
        "eurobond": DayCount.THIRTY_E_360,
        "eurobond basis": DayCount.THIRTY_E_360,
    }
)


def _normalise_name(name: str) -> str:
    return " ".join(name.lower().replace("(", " ").replace(")", " ").split())


def day_count(name: str) -> DayCount:
    """Parse a day-count name case-insensitively, from its value or a common alias.

    "ACT/365F", "Actual/365 (Fixed)", "ACT/ACT ISDA", "Bond Basis", "30/360E",
    "Eurobond" are accepted; ambiguous names such as "ACT/365" are refused.
    """
    if isinstance(name, DayCount):
        return name
    if isinstance(name, str) and len(name) <= 64:
        found = _DAY_COUNT_ALIASES.get(_normalise_name(name))
        if found is not None:
            return found
    valid = ", ".join(convention.value for convention in DayCount)
    raise UnknownDayCount(f"unknown day count {name!r}: expected one of {valid}", name=repr(name))


def _thirty_360_days(start: date, end: date, european: bool) -> int:
    d1, d2 = start.day, end.day
    if european:
        # ISDA 2006 4.16(g), 30E/360: any 31st counts as the 30th.
        d1 = min(d1, 30)
        d2 = min(d2, 30)
    else:
        # ISDA 2006 4.16(f), 30/360 ("bond basis"): D1 = 31 counts as 30; D2 = 31
        # counts as 30 only when D1 is 30 or 31. We do NOT apply the SIA
        # ("30/360 US") end-of-February rules (last day of February counts as
        # 30): ISDA 4.16(f) has none, and a loan contract that says 30/360
        # usually means this rule. QuantLib calls it Thirty360.BondBasis.
        if d2 == 31 and d1 >= 30:
            d2 = 30
        d1 = min(d1, 30)
    return 360 * (end.year - start.year) + 30 * (end.month - start.month) + (d2 - d1)


def _days_in_year(year: int) -> int:
    return 366 if _stdlib_calendar.isleap(year) else 365


def day_count_days(start: date, end: date, convention: DayCount) -> int:
    """The day-count numerator: actual days, or 30/360 days for the 30/360 family.

    With end < start it is minus the count from end to start.
    """
    _check_date(start, "start")
    _check_date(end, "end")
    convention = day_count(convention)
    if end < start:
        return -day_count_days(end, start, convention)
    if convention is DayCount.THIRTY_360:
        return _thirty_360_days(start, end, european=False)
    if convention is DayCount.THIRTY_E_360:
        return _thirty_360_days(start, end, european=True)
    return (end - start).days


def year_fraction(start: date, end: date, convention: DayCount) -> Fraction:
    """The exact year fraction from `start` to `end` under `convention`.

    Actual/Actual is the ISDA variant: the days in each calendar year are
    divided by that year's length (366 in leap years). With end < start the
    result is minus the fraction from end to start.
    """
    _check_date(start, "start")
    _check_date(end, "end")
    convention = day_count(convention)
    if end < start:
        return -year_fraction(end, start, convention)
    if convention is DayCount.ACT_360:
        return Fraction((end - start).days, 360)
    if convention is DayCount.ACT_365F:
        return Fraction((end - start).days, 365)
    if convention is DayCount.ACT_ACT:
        if start.year == end.year:
            return Fraction((end - start).days, _days_in_year(start.year))
        # The part of the first year, the whole years between, the part of the last.
        first = Fraction((date(start.year + 1, 1, 1) - start).days, _days_in_year(start.year))
        last = Fraction((end - date(end.year, 1, 1)).days, _days_in_year(end.year))
        return first + (end.year - start.year - 1) + last
    return Fraction(day_count_days(start, end, convention), 360)


# --- calendars -----------------------------------------------------------------

# Business-day searches stop after this many days: no real calendar has a run of
# holidays this long, so reaching it means a misconfigured calendar.
MAX_BUSINESS_DAY_SEARCH: Final = 366
# `add_business_days` moves at most this many business days (about 400 years).
_MAX_BUSINESS_DAYS_STEP: Final = 100_000
_DEFAULT_WEEKEND: Final = frozenset({5, 6})


@functools.lru_cache(maxsize=1)
def _supported_entities() -> Mapping[str, tuple[str, ...]]:
    """Country code (and alias) -> subdivision codes (and aliases), from `holidays`."""
    supported = _holidays.list_supported_countries(include_aliases=True)
    return MappingProxyType({code: tuple(subdivs) for code, subdivs in supported.items()})


@functools.lru_cache(maxsize=512)
def _resolve_entity(country: str, subdiv: str | None) -> tuple[str, str | None]:
    """Validate a country (and subdivision) and return their canonical spelling."""
    entities = _supported_entities()
    canonical_country = next((code for code in entities if code.upper() == country.upper()), None)
    if canonical_country is None:
        raise UnknownCalendar(
            f"unknown calendar {country!r}: expected 'none', 'weekends' or a country code "
            "known to the holidays package, such as US, GB, DE, KE, NG, IN, optionally "
            "with a subdivision such as US-NY",
            calendar=country,
        )
    if subdiv is None:
        return canonical_country, None
    subdivisions = entities[canonical_country]
    canonical_subdiv = next((code for code in subdivisions if code.upper() == subdiv.upper()), None)
    if canonical_subdiv is None:
        shown = ", ".join(subdivisions[:20]) + (", ..." if len(subdivisions) > 20 else "")
        raise UnknownCalendar(
            f"unknown subdivision {subdiv!r} of {canonical_country}: "
            + (f"expected one of {shown}" if subdivisions else "it has no subdivisions"),
            calendar=f"{country}-{subdiv}",
        )
    return canonical_country, canonical_subdiv


@functools.lru_cache(maxsize=512)
def _canonical_entity(country: str, subdiv: str | None) -> tuple[str, str | None]:
    """Validated (country, subdivision), with the holidays package's own country code.

    Builds the (country, subdivision) holidays object once, only to read its
    code ("UK" becomes "GB"). Years are computed by `_holiday_dates` with fresh
    objects, so no shared holidays object is ever mutated (they fill years in
    lazily, which is not thread-safe).
    """
    known_country, known_subdiv = _resolve_entity(country, subdiv)
    rules = _holidays.country_holidays(known_country, subdiv=known_subdiv, years=())
    return str(rules.country), known_subdiv


@functools.lru_cache(maxsize=4096)
def _holiday_dates(country: str, subdiv: str | None, year: int) -> frozenset[date]:
    """Public holidays (observed days included) of one year, cached."""
    year_rules = _holidays.country_holidays(country, subdiv=subdiv, years=year)
    return frozenset(day for day in year_rules if day.year == year)


@dataclass(frozen=True, slots=True)
class Calendar:
    """Which days are business days: not a weekend day and not a holiday.

    `country`/`subdiv` name the `holidays` package's public holidays (observed
    days included); `extra_holidays` adds a lender's own closures; `weekend`
    holds weekday numbers (Monday 0 ... Sunday 6). Immutable and hashable, so
    it can key caches and sit in frozen product definitions. Build it with
    `calendar(spec)` or `Calendar.custom(dates)`.
    """

    name: str
    country: str | None = None
    subdiv: str | None = None
    weekend: frozenset[int] = _DEFAULT_WEEKEND
    extra_holidays: frozenset[date] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        weekend = frozenset(self.weekend)
        for day in weekend:
            if isinstance(day, bool) or not isinstance(day, int) or not 0 <= day <= 6:
                raise InvalidInput(
                    f"weekend days are weekday numbers 0 (Monday) to 6 (Sunday), got {day!r}",
                    weekend=repr(sorted(weekend, key=repr)),
                )
        if len(weekend) == 7:
            raise InvalidInput("a calendar whose every weekday is weekend has no business day")
        extras = frozenset(_check_date(day, "holiday") for day in self.extra_holidays)
        object.__setattr__(self, "weekend", weekend)
        object.__setattr__(self, "extra_holidays", extras)
        if self.country is None:
            if self.subdiv is not None:
                raise UnknownCalendar("a subdivision needs a country", subdiv=self.subdiv)
            return
        country, subdiv = _canonical_entity(self.country, self.subdiv)
        object.__setattr__(self, "country", country)
        object.__setattr__(self, "subdiv", subdiv)

    @classmethod
    def custom(
        cls,
        holidays: Iterable[date],
        *,
        weekend: Iterable[int] = _DEFAULT_WEEKEND,
        name: str = "custom",
    ) -> Calendar:
        """A calendar of the given holiday dates only (no country rules).

        Saturdays and Sundays are weekend unless `weekend` says otherwise;
        pass `weekend=()` for a calendar whose only closures are the dates.
        """
        return cls(name=name, weekend=frozenset(weekend), extra_holidays=frozenset(holidays))

    def with_holidays(self, dates: Iterable[date]) -> Calendar:
        """This calendar plus more holiday dates (a lender's own closures)."""
        return Calendar(
            name=self.name,
            country=self.country,
            subdiv=self.subdiv,
            weekend=self.weekend,
            extra_holidays=self.extra_holidays | frozenset(dates),
        )

    def _is_holiday(self, d: date) -> bool:
        if d in self.extra_holidays:
            return True
        if self.country is None:
            return False
        return d in _holiday_dates(self.country, self.subdiv, d.year)

    def _is_business_day(self, d: date) -> bool:
        return d.weekday() not in self.weekend and not self._is_holiday(d)

    def is_holiday(self, d: date) -> bool:
        """Whether `d` is a holiday (whatever its weekday); weekends are not holidays."""
        return self._is_holiday(_check_date(d))

    def is_business_day(self, d: date) -> bool:
        """Whether `d` is neither a weekend day nor a holiday."""
        return self._is_business_day(_check_date(d))

    def holidays_between(self, start: date, end: date) -> list[date]:
        """Holiday dates from `start` to `end`, both included, in order.

        Holidays falling on a weekend are listed too; weekends themselves are
        not. Empty when end < start.
        """
        _check_date(start, "start")
        _check_date(end, "end")
        found = {day for day in self.extra_holidays if start <= day <= end}
        if self.country is not None:
            for year in range(start.year, end.year + 1):
                found.update(
                    day
                    for day in _holiday_dates(self.country, self.subdiv, year)
                    if start <= day <= end
                )
        return sorted(found)

    def _step(self, d: date, direction: int) -> date:
        one_day = timedelta(days=direction)
        candidate = d
        for _ in range(MAX_BUSINESS_DAY_SEARCH):
            try:
                candidate = candidate + one_day
            except OverflowError:
                raise InvalidDate(
                    f"no business day after {d.isoformat()} within years 1-9999",
                    value=d.isoformat(),
                ) from None
            if self._is_business_day(candidate):
                return candidate
        raise InvalidInput(
            f"calendar {self.name!r} has no business day within "
            f"{MAX_BUSINESS_DAY_SEARCH} days of {d.isoformat()}",
            calendar=self.name,
        )

    def next_business_day(self, d: date) -> date:
        """The first business day strictly after `d`."""
        _check_date(d)
        return self._step(d, 1)

    def previous_business_day(self, d: date) -> date:
        """The last business day strictly before `d`."""
        _check_date(d)
        return self._step(d, -1)

    def add_business_days(self, d: date, n: int) -> date:
        """`d` moved by `n` business days (negative goes back).

        From a non-business day, one business day forward is the next business
        day. With n == 0 the result is `d` rolled forward to a business day
        (QuantLib's `advance` behaves the same), so T+0 never lands on a holiday.
        """
        _check_date(d)
        if isinstance(n, bool) or not isinstance(n, int):
            raise InvalidInput(f"business days must be an int, got {n!r}", days=repr(n))
        if abs(n) > _MAX_BUSINESS_DAYS_STEP:
            raise InvalidInput(
                f"cannot move more than {_MAX_BUSINESS_DAYS_STEP} business days, got {n}",
                days=n,
            )
        if n == 0:
            return d if self._is_business_day(d) else self._step(d, 1)
        direction = 1 if n > 0 else -1
        result = d
        for _ in range(abs(n)):
            result = self._step(result, direction)
        return result

    def __str__(self) -> str:
        return self.name


def _weekend_or_default(weekend: Iterable[int] | None, default: frozenset[int]) -> frozenset[int]:
    return default if weekend is None else frozenset(weekend)


def calendar(
    spec: str,
    extra_holidays: Iterable[date] = (),
    weekend: Iterable[int] | None = None,
) -> Calendar:
    """A calendar from a spec string (case-insensitive).

    * "none" or "": every day is a business day (no weekend unless `weekend`
      is given; `extra_holidays` still apply);
    * "weekends": Saturday and Sunday only;
    * a country code of the `holidays` package ("US", "GB", "DE", "KE", "NG",
      "IN", ...) optionally with a subdivision ("US-NY"): its public holidays,
      observed days included, plus weekends.

    `weekend` (weekday numbers, Monday 0) defaults to Saturday and Sunday
    except for "none". Unknown specs raise UnknownCalendar.
    """
    if not isinstance(spec, str) or len(spec) > 64:
        raise UnknownCalendar(f"a calendar spec must be short text, got {spec!r}")
    key = spec.strip()
    lowered = key.lower()
    if lowered in ("", "none"):
        return Calendar(
            name="none",
            weekend=_weekend_or_default(weekend, frozenset()),
            extra_holidays=frozenset(extra_holidays),
        )
    if lowered == "weekends":
        return Calendar(
            name="weekends",
            weekend=_weekend_or_default(weekend, _DEFAULT_WEEKEND),
            extra_holidays=frozenset(extra_holidays),
        )
    country, separator, subdiv = key.partition("-")
    if not country or (separator and not subdiv):
        raise UnknownCalendar(
            f"unknown calendar {spec!r}: expected 'none', 'weekends', a country code "
            "such as US or a country and subdivision such as US-NY",
            calendar=spec,
        )
    resolved_country, resolved_subdiv = _canonical_entity(country, subdiv or None)
    return Calendar(
        name=resolved_country
        if resolved_subdiv is None
        else f"{resolved_country}-{resolved_subdiv}",
        country=resolved_country,
        subdiv=resolved_subdiv,
        weekend=_weekend_or_default(weekend, _DEFAULT_WEEKEND),
        extra_holidays=frozenset(extra_holidays),
    )


# --- business-day conventions ----------------------------------------------------


class BusinessDayConvention(StrEnum):
    """How a date that is not a business day is moved (ISDA 2006 4.12)."""

    FOLLOWING = "following"
    MODIFIED_FOLLOWING = "modified-following"
    PRECEDING = "preceding"
    MODIFIED_PRECEDING = "modified-preceding"
    UNADJUSTED = "unadjusted"


_CONVENTION_ALIASES: Final[Mapping[str, BusinessDayConvention]] = MappingProxyType(
    {
        **{convention.value: convention for convention in BusinessDayConvention},
        "modifiedfollowing": BusinessDayConvention.MODIFIED_FOLLOWING,
        "mod-following": BusinessDayConvention.MODIFIED_FOLLOWING,
        "modifiedpreceding": BusinessDayConvention.MODIFIED_PRECEDING,
        "mod-preceding": BusinessDayConvention.MODIFIED_PRECEDING,
        "none": BusinessDayConvention.UNADJUSTED,
    }
)


def business_day_convention(name: str) -> BusinessDayConvention:
    """Parse a business-day convention case-insensitively.

    Spaces and underscores count as hyphens ("Modified Following" works).
    """
    if isinstance(name, BusinessDayConvention):
        return name
    if isinstance(name, str) and len(name) <= 64:
        key = "-".join(name.strip().lower().replace("_", " ").replace("-", " ").split())
        found = _CONVENTION_ALIASES.get(key)
        if found is not None:
            return found
    valid = ", ".join(convention.value for convention in BusinessDayConvention)
    raise UnknownBusinessDayConvention(
        f"unknown business-day convention {name!r}: expected one of {valid}", name=repr(name)
    )


def adjust(d: date, convention: BusinessDayConvention, cal: Calendar) -> date:
    """`d` moved to a business day of `cal` by `convention` (unchanged if already one).

    Modified following takes the next business day unless that falls in the
    next month, then the previous one; modified preceding is its mirror.
    """
    _check_date(d)
    convention = business_day_convention(convention)
    if convention is BusinessDayConvention.UNADJUSTED or cal.is_business_day(d):
        return d
    if convention is BusinessDayConvention.FOLLOWING:
        return cal.next_business_day(d)
    if convention is BusinessDayConvention.PRECEDING:
        return cal.previous_business_day(d)
    if convention is BusinessDayConvention.MODIFIED_FOLLOWING:
        following = cal.next_business_day(d)
        return following if following.month == d.month else cal.previous_business_day(d)
    preceding = cal.previous_business_day(d)
    return preceding if preceding.month == d.month else cal.next_business_day(d)
