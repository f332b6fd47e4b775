"""Settled schedule terms as a JSON document, so a booked loan keeps them exactly."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from lendcore.dates import BusinessDayConvention, Calendar, DayCount, calendar
from lendcore.money import RoundingMode
from lendcore.schedules.terms import (
    Amortization,
    InterestMethod,
    InterestPeriod,
    ScheduleTerms,
    frequency,
)


def _calendar_doc(cal: Calendar) -> dict[str, Any]:
    return {
        "name": cal.name,
        "holidays": sorted(d.isoformat() for d in cal.extra_holidays),
        "weekend": sorted(cal.weekend),
    }


def _calendar_from(doc: dict[str, Any]) -> Calendar:
    return calendar(
        doc["name"],
        [date.fromisoformat(d) for d in doc["holidays"]],
        weekend=doc["weekend"],
    )


def terms_to_doc(t: ScheduleTerms) -> dict[str, Any]:
    return {
        "principal_minor": t.principal_minor,
        "currency": t.currency,
        "exponent": t.exponent,
        "annual_rate": str(t.annual_rate),
        "term": t.term,
        "frequency": t.frequency.name,
        "start": t.start.isoformat(),
        "day_count": t.day_count.value,
        "method": t.method.value,
        "amortization": t.amortization.value,
        "interest_period": t.interest_period.value,
        "first_repayment": t.first_repayment.isoformat() if t.first_repayment else None,
        "grace_principal": t.grace_principal,
        "grace_interest": t.grace_interest,
        "payment_holiday": t.payment_holiday,
        "calendar": _calendar_doc(t.calendar),
        "convention": t.convention.value,
        "rounding": t.rounding.value,
        "instalment_multiple_minor": t.instalment_multiple_minor,
        "periodic_fee_minor": t.periodic_fee_minor,
        "instalment_minor": t.instalment_minor,
        "due_dates": None if t.due_dates is None else [d.isoformat() for d in t.due_dates],
    }


def terms_from_doc(doc: dict[str, Any]) -> ScheduleTerms:
    first = doc["first_repayment"]
    return ScheduleTerms(
        principal_minor=int(doc["principal_minor"]),
        currency=doc["currency"],
        exponent=int(doc["exponent"]),
        annual_rate=Decimal(doc["annual_rate"]),
        term=int(doc["term"]),
        frequency=frequency(doc["frequency"]),
        start=date.fromisoformat(doc["start"]),
        day_count=DayCount(doc["day_count"]),
        method=InterestMethod(doc["method"]),
        amortization=Amortization(doc["amortization"]),
        interest_period=InterestPeriod(doc["interest_period"]),
        first_repayment=date.fromisoformat(first) if first else None,
        grace_principal=int(doc["grace_principal"]),
        grace_interest=int(doc["grace_interest"]),
        payment_holiday=int(doc["payment_holiday"]),
        calendar=_calendar_from(doc["calendar"]),
        convention=BusinessDayConvention(doc["convention"]),
        rounding=RoundingMode(doc["rounding"]),
        instalment_multiple_minor=int(doc["instalment_multiple_minor"]),
        periodic_fee_minor=int(doc["periodic_fee_minor"]),
        instalment_minor=doc.get("instalment_minor"),
        due_dates=None
        if doc.get("due_dates") is None
        else tuple(date.fromisoformat(d) for d in doc["due_dates"]),
    )
