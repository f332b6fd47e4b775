"""Decision benchmark: prints figures, asserts nothing about speed.

- the decision itself, in one process: policy rules (the policy's JDM decision
  tables, compiled to Python with zen-engine as the reference), the demo
  scorecard, pricing and the schedule's figures for affordability
  (`risk.decision.decide`) on varied applications: decisions/s, p50/p99;
- its parts: each table compiled and by zen-engine, the scorecard, the
  schedule's total at the stress rate (`schedules.quote`: an integer
  recurrence) against a full build, the instalment at the priced rate in
  closed form; and how often each took its slower path (a table's facts left
  to zen-engine, an instalment walked instead of the closed form);
- the whole command on SQLite: `submit_application` (permission gate, audit
  record, facts read from the store, decision stored): calls/s, p50/p99.

Target (issue 5): >= 5,000 decisions/s in one process with rules and scorecard,
p99 <= 5 ms.

    python benchmarks/decisions.py            # full run
    python benchmarks/decisions.py --quick    # smoke run
    python benchmarks/decisions.py --json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import zen
from rich.console import Console
from rich.table import Table

from lendcore.risk.decision import DecisionInputs, decide, policy_facts, schedule_terms
from lendcore.risk.jdm import CompiledTable, NeedsReference, compiled_graph
from lendcore.risk.model import load_model
from lendcore.risk.policy import default_policy_text, policy_from_text
from lendcore.schedules.engine import build_schedule
from lendcore.schedules.quote import quote, quote_instalment
from lendcore.services import applications, lender
from lendcore.store.database import open_database

DEMO_MODEL = Path(__file__).resolve().parents[1] / "src" / "lendcore" / "risk" / "demo_model"


def applications_sample(count: int, seed: int = 7) -> list[DecisionInputs]:
    """Varied applications: amounts, terms, incomes and credit profiles."""
    draw = random.Random(seed)
    base = DecisionInputs(
        application_id=1,
        business_date=date(2026, 11, 26),
        product_code="consumer-annuity",
        product_version=1,
        currency="USD",
        amount_minor=500_000,
        term=36,
        age_years=40,
        kyc_status="verified",
        screening_status="clear",
        employment_status="employed",
        monthly_income_minor=600_000,
        monthly_obligations_minor=40_000,
        borrower_exposure_minor=0,
        group_exposure_minor=0,
        product_book_minor=50_000_000,
        total_book_minor=200_000_000,
        features={},
    )
    sample = []
    for n in range(count):
        income = draw.randrange(150_000, 1_500_000)
        features = {
            "age_years": draw.randint(19, 80),
            "monthly_income": income / 100,
            "debt_ratio": round(draw.uniform(0, 0.6), 4),
            "revolving_utilization": round(draw.uniform(0, 1.2), 4),
            "open_credit_lines": draw.randint(0, 20),
            "real_estate_loans": draw.randint(0, 3),
            "times_30_59_days_late": draw.choice([0, 0, 0, 1, 2]),
            "times_60_89_days_late": draw.choice([0, 0, 0, 0, 1]),
            "times_90_days_late": draw.choice([0, 0, 0, 0, 0, 1]),
            "dependents": draw.randint(0, 4),
        }
        sample.append(
            replace(
                base,
                application_id=n + 1,
                amount_minor=draw.randrange(50_000, 5_000_000, 10_000),
                term=draw.choice([6, 12, 24, 36, 48, 60]),
                age_years=int(features["age_years"]),
                monthly_income_minor=income,
                monthly_obligations_minor=int(income * features["debt_ratio"]),
                borrower_exposure_minor=draw.choice([0, 0, 0, 500_000, 2_000_000]),
                features=features,
            )
        )
    return sample


def timed(fn: Callable[[Any], Any], items: list[Any]) -> dict[str, float]:
    for item in items[:20]:
        fn(item)
    samples = []
    started = time.perf_counter()
    for item in items:
        t0 = time.perf_counter_ns()
        fn(item)
        samples.append((time.perf_counter_ns() - t0) / 1e6)
    elapsed = time.perf_counter() - started
    samples.sort()
    return {
        "count": float(len(samples)),
        "per_s": len(samples) / elapsed,
        "p50_ms": statistics.median(samples),
        "p99_ms": samples[min(len(samples) - 1, int(len(samples) * 0.99))],
    }


def measure(quick: bool) -> dict[str, dict[str, float]]:
    from lendcore.services.lender import example_product

    product = example_product("consumer-annuity")
    policy = policy_from_text(default_policy_text())
    eligibility, pricing = (
        compiled_graph(policy.document[part]) for part in ("eligibility", "pricing")
    )
    if not isinstance(eligibility, CompiledTable) or not isinstance(pricing, CompiledTable):
        raise SystemExit(f"the default policy's tables do not compile: {policy.compiled}")
    engine = zen.ZenEngine()
    zen_eligibility = engine.create_decision(json.dumps(policy.document["eligibility"]))
    zen_pricing = engine.create_decision(json.dumps(policy.document["pricing"]))
    card = load_model(DEMO_MODEL)
    sample = applications_sample(500 if quick else 5_000)
    stress_rate = product.interest.rate.max
    facts = [policy_facts(product, x, 50_000) for x in sample]
    scores = [card.score(x.features).score for x in sample]
    score_facts = [{"score": score} for score in scores]
    stress_terms = [schedule_terms(product, x, stress_rate) for x in sample]
    priced_terms = [
        schedule_terms(product, x, policy.pricing(score).annual_rate)
        for x, score in zip(sample, scores, strict=True)
    ]
    indexed = list(range(len(sample)))
    results = {
        "decide (rules + scorecard + pricing + schedule figures)": timed(
            lambda x: decide(x, product, policy, card), sample
        ),
        "  eligibility table, compiled (Python)": timed(eligibility.run, facts),
        "  eligibility table, zen-engine": timed(zen_eligibility.evaluate, facts),
        "  pricing table, compiled (Python)": timed(pricing.run, score_facts),
        "  pricing table, zen-engine": timed(zen_pricing.evaluate, score_facts),
        "  pricing row of a score (kept per score)": timed(policy.pricing, scores),
        "  scorecard": timed(lambda x: card.score(x.features), sample),
        "  schedule terms (product.terms)": timed(
            lambda x: schedule_terms(product, x, stress_rate), sample
        ),
        "  total at the stress rate (quote: recurrence)": timed(quote, stress_terms),
        "  instalment at the priced rate (closed form)": timed(quote_instalment, priced_terms),
        "  one full schedule build (before: two per decision)": timed(
            lambda n: build_schedule(stress_terms[n]), indexed[: len(indexed) // 5]
        ),
    }
    referred = 0
    for one in facts:
        try:
            eligibility.run(one)
        except NeedsReference:
            referred += 1
    walked = sum(quote_instalment(t).how != "closed form" for t in priced_terms)
    results["  (facts left to zen-engine; instalments walked)"] = {
        "count": float(len(sample)),
        "per_s": float("nan"),
        "p50_ms": float("nan"),
        "p99_ms": float("nan"),
        "to_zen": float(referred),
        "walked": float(walked),
    }
    with tempfile.TemporaryDirectory() as directory:
        db = open_database(f"sqlite:///{directory}/bench.db")
        staff = lender.set_up_lender(db, [product], {"USD": 10_000_000_000})
        borrowers = [lender.onboard(staff, f"Borrower {n}", "USD") for n in range(20)]
        count = 100 if quick else 500
        calls = list(range(count))
        results["submit_application on SQLite (whole command)"] = timed(
            lambda n: applications.submit_application(
                staff.loan_officer,
                borrowers[n % len(borrowers)],
                "consumer-annuity",
                "2000.00",
                12,
                purpose="Benchmark",
                monthly_income="6000.00",
                credit_profile=dict(lender.GOOD_PROFILE),
            ),
            calls,
        )
        db.dispose()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    results = measure(args.quick)
    if args.json:
        print(
            json.dumps(
                {
                    "benchmark": "decisions",
                    "python": platform.python_version(),
                    "cpus": os.cpu_count(),
                    "results": results,
                },
                indent=2,
            )
        )
        return 0
    table = Table(title="Decision benchmark (target: >= 5,000 decisions/s, p99 <= 5 ms)")
    for column in ("what", "per second", "p50 ms", "p99 ms", "runs"):
        table.add_column(column, justify="left" if column == "what" else "right")
    for name, r in results.items():
        if "to_zen" in r:
            name = f"{name}: {r['to_zen']:,.0f} and {r['walked']:,.0f}"
            table.add_row(name, "", "", "", f"{r['count']:,.0f}")
            continue
        table.add_row(
            name,
            f"{r['per_s']:,.0f}",
            f"{r['p50_ms']:.3f}",
            f"{r['p99_ms']:.3f}",
            f"{r['count']:,.0f}",
        )
    Console(width=None if sys.stdout.isatty() else 150).print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
