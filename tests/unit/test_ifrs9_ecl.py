"""Expected credit loss: hand-computed loans per stage, scenarios, properties,
and the columnar grid against a loan-by-loan reference."""

from __future__ import annotations

import copy
from datetime import date
from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lendcore.dates import add_months
from lendcore.ifrs9.config import Ifrs9Config, Ifrs9InputInvalid, parse_config
from lendcore.ifrs9.ecl import expected_credit_loss

AS_OF = date(2025, 1, 31)

SETTINGS: dict[str, Any] = {
    "sicr": {"relative": 2.5, "absolute": 0.03},
    "probation_days": {"stage2_to_1": 90, "stage3_to_2": 180},
    "lgd": {"default": 0.5, "by_product": {"secured": 0.25, "odd": 0.45}},
    "pd": {
        "delinquency_multipliers": {"current": 1.0, "1-30": 4.0, "31-60": 8.0, "61-90": 12.0},
        "default_pd_12m": 0.05,
    },
    "scenarios": [{"name": "base", "weight": "1", "pd_multiplier": 1.0}],
}


def config(scenarios: list[tuple[str, str, float]] | None = None) -> Ifrs9Config:
    document = copy.deepcopy(SETTINGS)
    if scenarios is not None:
        document["scenarios"] = [
            {"name": n, "weight": w, "pd_multiplier": k} for n, w, k in scenarios
        ]
    return parse_config(document)


CONFIG = config()

# A 12-month PD whose monthly survival is exactly 0.9: 1 - 0.9^12.
PD_S09 = 1 - 0.9**12  # 0.717570463519
# An annual EIR whose monthly discount factor is 1/1.01: 1.01^12 - 1.
EIR_1PCT = 1.01**12 - 1  # 0.126825030131970


def loans(*rows: dict[str, Any]) -> pl.DataFrame:
    base = {"product_code": "plain", "stage": 1, "pd_now": PD_S09, "annual_eir": 0.0}
    return pl.DataFrame(
        [{"loan_id": i + 1, **base, **row} for i, row in enumerate(rows)],
        schema={
            "loan_id": pl.Int64,
            "product_code": pl.String,
            "stage": pl.Int8,
            "pd_now": pl.Float64,
            "annual_eir": pl.Float64,
            "exposure_minor": pl.Int64,
        },
    )


def flows(*rows: tuple[int, date, int]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "loan_id": [r[0] for r in rows],
            "due_date": [r[1] for r in rows],
            "principal_minor": [r[2] for r in rows],
        },
        schema={"loan_id": pl.Int64, "due_date": pl.Date, "principal_minor": pl.Int64},
    )


def ecl(frame: pl.DataFrame, cash: pl.DataFrame, cfg: Ifrs9Config = CONFIG) -> list[int]:
    out = expected_credit_loss(frame, cash, cfg, AS_OF)
    assert out.columns == ["loan_id", "ecl_minor"]
    assert out.schema["ecl_minor"] == pl.Int64
    assert out.get_column("loan_id").to_list() == frame.get_column("loan_id").to_list()
    return out.get_column("ecl_minor").to_list()


def monthly(loan_id: int, months: int, principal: int) -> list[tuple[int, date, int]]:
    return [(loan_id, add_months(AS_OF, k), principal) for k in range(1, months + 1)]


def test_stage_1_by_hand() -> None:
    # Three instalments of 1,000 principal, exposure 3,000: H = min(12, 3) = 3.
    # s = 0.9: marginal PD 0.1, 0.09, 0.081; EAD 3000, 2000, 1000; DF 1/1.01^m; LGD 0.5.
    #   0.1 * 3000 / 1.01       = 297.0297
    #   0.09 * 2000 / 1.0201    = 176.4533
    #   0.081 * 1000 / 1.030301 =  78.6178
    #   sum 552.1008 x 0.5      = 276.0504 -> 276
    frame = loans({"exposure_minor": 3000, "annual_eir": EIR_1PCT})
    assert ecl(frame, flows(*monthly(1, 3, 1000))) == [276]


def test_stage_2_lifetime_by_hand() -> None:
    # A bullet of 10,000 due in month 14: lifetime 14 months, EAD 10,000 throughout, no
    # discounting (EIR 0), LGD 0.5.
    #   stage 2: 0.5 * 10000 * (1 - 0.9^14) = 5000 * 0.771232075450 = 3856.16 -> 3856
    #   stage 1: 0.5 * 10000 * (1 - 0.9^12) = 5000 * 0.717570463519 = 3587.85 -> 3588
    cash = flows((1, add_months(AS_OF, 14), 10000), (2, add_months(AS_OF, 14), 10000))
    frame = loans({"stage": 2, "exposure_minor": 10000}, {"stage": 1, "exposure_minor": 10000})
    assert ecl(frame, cash) == [3856, 3588]


def test_stage_3_by_hand_rounds_half_even() -> None:
    # PD 1 at once, no discount, no scenario: LGD x exposure.
    #   10,000 x 0.25 (secured)  = 2500
    #   10,001 x 0.5             = 5000.5 -> 5000 (half to even)
    #   10,003 x 0.5             = 5001.5 -> 5002
    #   1,000 x 0.45 (odd)       = 450, whatever the PD and EIR say
    frame = loans(
        {"stage": 3, "exposure_minor": 10000, "product_code": "secured"},
        {"stage": 3, "exposure_minor": 10001},
        {"stage": 3, "exposure_minor": 10003},
        {
            "stage": 3,
            "exposure_minor": 1000,
            "product_code": "odd",
            "pd_now": 0.0,
            "annual_eir": 0.3,
        },
    )
    cash = flows(*monthly(1, 24, 100))
    assert ecl(frame, cash) == [2500, 5000, 5002, 450]


def test_month_boundaries_follow_calendar_months() -> None:
    # as_of 2025-01-31: month 1 ends 2025-02-28, month 2 ends 2025-03-31 (clamped, from as_of).
    # Loan 1: 1,000 due 02-28 (month 1) and 1,000 due 03-31 (month 2): EAD 2000, 1000.
    #   0.5 * (0.1 * 2000 + 0.09 * 1000) = 145
    # Loan 2: 1,000 due 03-01 and 1,000 due 03-31, both month 2: EAD 2000, 2000.
    #   0.5 * (0.1 * 2000 + 0.09 * 2000) = 190
    cash = flows(
        (1, date(2025, 2, 28), 1000),
        (1, date(2025, 3, 31), 1000),
        (2, date(2025, 3, 1), 1000),
        (2, date(2025, 3, 31), 1000),
    )
    frame = loans({"exposure_minor": 2000}, {"exposure_minor": 2000})
    assert ecl(frame, cash) == [145, 190]


def test_no_future_cash_flow_is_a_one_month_horizon() -> None:
    # Stage 2 with nothing scheduled: H = 1, 0.5 * 0.1 * 8000 = 400.
    assert ecl(loans({"stage": 2, "exposure_minor": 8000}), flows()) == [400]


def test_exposure_above_the_schedule_stays_exposed() -> None:
    # Exposure 1,600 (600 interest and fees receivable) with 1,000 principal in month 1:
    # EAD 1600 then 600. 0.5 * (0.1 * 1600 + 0.09 * 600) = 0.5 * (160 + 54) = 107
    cash = flows((1, add_months(AS_OF, 1), 1000), (1, add_months(AS_OF, 2), 0))
    assert ecl(loans({"exposure_minor": 1600}), cash) == [107]


def test_scenario_weighting_by_hand() -> None:
    # One month (a single instalment), marginal PD 0.1, exposure 10,000, LGD 0.5.
    # Weights 0.5 x1 and 0.5 x2: PD 0.5*0.1 + 0.5*0.2 = 0.15 -> 0.5 * 10000 * 0.15 = 750
    frame = loans({"exposure_minor": 10000})
    cash = flows((1, add_months(AS_OF, 1), 10000))
    two = config([("base", "0.5", 1.0), ("down", "0.5", 2.0)])
    assert ecl(frame, cash, two) == [750]
    # A multiplier of 20 caps the stressed PD at 1: 0.5*0.1 + 0.5*1 = 0.55 -> 2750
    capped = config([("base", "0.5", 1.0), ("severe", "0.5", 20.0)])
    assert ecl(frame, cash, capped) == [2750]
    # Weights 0.2/0.5/0.3, multipliers 0.5/1/3: 0.2*0.05 + 0.5*0.1 + 0.3*0.3 = 0.15 -> 750
    three = config([("up", "0.2", 0.5), ("base", "0.5", 1.0), ("down", "0.3", 3.0)])
    assert ecl(frame, cash, three) == [750]
    # Stage 3 ignores the scenarios: 0.5 * 10000.
    assert ecl(loans({"stage": 3, "exposure_minor": 10000}), cash, capped) == [5000]


def test_stage_1_stops_at_12_months() -> None:
    # 36 instalments of 1,000; PD 0 after month 12 would not matter, so compare with a
    # loan whose schedule ends at month 12 with the rest as one balloon in month 13.
    # Both stage 1: the same first 12 months, hence the same ECL.
    long = monthly(1, 36, 1000)
    short = [*monthly(2, 12, 1000), (2, add_months(AS_OF, 13), 24000)]
    frame = loans({"exposure_minor": 36000}, {"exposure_minor": 36000})
    first, second = ecl(frame, flows(*long, *short))
    assert first == second > 0
    lifetime = ecl(loans({"stage": 2, "exposure_minor": 36000}), flows(*long))[0]
    assert lifetime > first


def test_edges() -> None:
    # Zero and negative exposure give 0; PD 0 gives 0; PD 1 in stage 1 loses LGD x EAD in
    # month 1 (0.5 * 4000 = 2000).
    frame = loans(
        {"exposure_minor": 0},
        {"exposure_minor": -500, "stage": 3},
        {"exposure_minor": 4000, "pd_now": 0.0},
        {"exposure_minor": 4000, "pd_now": 1.0},
    )
    assert ecl(frame, flows(*monthly(4, 6, 500))) == [0, 0, 0, 2000]
    empty = expected_credit_loss(loans().head(0), flows(), CONFIG, AS_OF)
    assert empty.height == 0


def test_other_loans_cash_flows_are_ignored() -> None:
    alone = ecl(loans({"exposure_minor": 3000}), flows(*monthly(1, 3, 1000)))
    mixed = ecl(loans({"exposure_minor": 3000}), flows(*monthly(1, 3, 1000), *monthly(99, 40, 7)))
    assert alone == mixed


def test_bad_input_is_refused() -> None:
    good = loans({"exposure_minor": 100})
    with pytest.raises(Ifrs9InputInvalid, match="stage outside"):
        ecl(loans({"exposure_minor": 100, "stage": 4}), flows())
    with pytest.raises(Ifrs9InputInvalid, match="pd_now outside"):
        ecl(loans({"exposure_minor": 100, "pd_now": 1.2}), flows())
    with pytest.raises(Ifrs9InputInvalid, match="annual_eir"):
        ecl(loans({"exposure_minor": 100, "annual_eir": -1.0}), flows())
    with pytest.raises(Ifrs9InputInvalid, match="repeats"):
        ecl(pl.concat([good, good]), flows())
    with pytest.raises(Ifrs9InputInvalid, match="on or before"):
        ecl(good, flows((1, AS_OF, 100)))
    with pytest.raises(Ifrs9InputInvalid, match="negative principal"):
        ecl(good, flows((1, add_months(AS_OF, 1), -1)))
    with pytest.raises(Ifrs9InputInvalid, match="exposure_minor is Float64"):
        ecl(good.with_columns(exposure_minor=pl.lit(100.5)), flows())
    with pytest.raises(Ifrs9InputInvalid, match="null"):
        ecl(good.with_columns(pd_now=pl.lit(None, dtype=pl.Float64)), flows())


# --- properties -------------------------------------------------------------------------


def reference_ecl(loan: dict[str, Any], cash: list[tuple[date, int]], cfg: Ifrs9Config) -> float:
    """The module docstring's formula for one loan, in plain Python."""
    lgd = cfg.lgd.by_product.get(loan["product_code"], cfg.lgd.default)
    exposure = loan["exposure_minor"]
    if loan["stage"] == 3:
        return float(lgd * exposure)
    bounds = [add_months(AS_OF, k) for k in range(0, 400)]
    months = [next(m for m in range(1, 400) if due <= bounds[m]) for due, _ in cash]
    lifetime = max([1, *months])
    horizon = min(12, lifetime) if loan["stage"] == 1 else lifetime
    s = (1 - loan["pd_now"]) ** (1 / 12)
    total = 0.0
    for m in range(1, horizon + 1):
        repaid = sum(p for (due, p) in cash if due <= bounds[m - 1])
        ead = max(0, exposure - repaid)
        marginal = s ** (m - 1) * (1 - s)
        pd = sum(float(sc.weight) * min(1.0, marginal * sc.pd_multiplier) for sc in cfg.scenarios)
        total += pd * lgd * ead * (1 + loan["annual_eir"]) ** (-m / 12)
    return total


loan_rows = st.fixed_dictionaries(
    {
        "product_code": st.sampled_from(["plain", "secured", "odd"]),
        "stage": st.integers(1, 3),
        "pd_now": st.floats(0, 1),
        "annual_eir": st.floats(-0.5, 1.0),
        "exposure_minor": st.integers(-1000, 10**9),
        "cash": st.lists(st.tuples(st.integers(1, 1200), st.integers(0, 10**8)), max_size=8),
    }
)
scenario_sets = st.sampled_from(
    [
        [("base", "1", 1.0)],
        [("base", "0.6", 1.0), ("up", "0.2", 0.8), ("down", "0.2", 1.5)],
        [("base", "0.5", 1.0), ("severe", "0.5", 5.0)],
    ]
)


def _book(rows: list[dict[str, Any]]) -> tuple[pl.DataFrame, pl.DataFrame]:
    frame = loans(*[{k: v for k, v in r.items() if k != "cash"} for r in rows])
    cash = flows(
        *[
            (i + 1, date.fromordinal(AS_OF.toordinal() + days), p)
            for i, r in enumerate(rows)
            for days, p in r["cash"]
        ]
    )
    return frame, cash


@settings(max_examples=40, deadline=None)
@given(st.lists(loan_rows, min_size=1, max_size=8), scenario_sets)
def test_columnar_matches_the_loan_by_loan_formula(
    rows: list[dict[str, Any]], scenarios: list[tuple[str, str, float]]
) -> None:
    cfg = config(scenarios)
    frame, cash = _book(rows)
    got = ecl(frame, cash, cfg)
    for i, row in enumerate(rows):
        schedule = [(date.fromordinal(AS_OF.toordinal() + d), p) for d, p in row["cash"]]
        expected = reference_ecl({**row, "loan_id": i + 1}, schedule, cfg)
        capped = min(max(expected, 0.0), max(row["exposure_minor"], 0))
        # The sums run in another order; allow one minor unit at a rounding edge.
        assert abs(got[i] - capped) <= 0.5 + 1e-6 * max(1.0, capped)


@settings(max_examples=40, deadline=None)
@given(st.lists(loan_rows, min_size=1, max_size=8), scenario_sets)
def test_bounds_stage_order_and_determinism(
    rows: list[dict[str, Any]], scenarios: list[tuple[str, str, float]]
) -> None:
    cfg = config(scenarios)
    frame, cash = _book(rows)
    got = ecl(frame, cash, cfg)
    for value, row in zip(got, rows, strict=True):
        assert 0 <= value <= max(0, row["exposure_minor"])
    # The same book again, and shuffled, gives the same ECL per loan.
    assert ecl(frame, cash, cfg) == got
    shuffled = expected_credit_loss(
        frame.reverse(), cash.sample(fraction=1.0, shuffle=True, seed=1), cfg, AS_OF
    )
    assert dict(shuffled.iter_rows()) == dict(zip(frame.get_column("loan_id"), got, strict=True))
    # Lifetime (stage 2) is never below 12 months (stage 1) for the same loan.
    stage1 = ecl(frame.with_columns(stage=pl.lit(1, dtype=pl.Int8)), cash, cfg)
    stage2 = ecl(frame.with_columns(stage=pl.lit(2, dtype=pl.Int8)), cash, cfg)
    assert all(b >= a for a, b in zip(stage1, stage2, strict=True))
