"""The policy's decision tables compiled to Python give zen-engine's result exactly.

zen-engine is the reference. Differential tests (hypothesis): the shipped
policy's tables on generated facts, with the values at and around every
rule's boundary; random tables of everything the compiler claims to support
on random facts. Results are compared as JSON, so an int where zen gives a
float (or a missing key where zen gives null) is a difference. Tables or
facts the compiler does not decide exactly go to zen-engine, and that
fallback is tested too.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import pytest
import zen
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from lendcore.risk.jdm import (
    CompiledTable,
    NeedsReference,
    Unsupported,
    compile_cell,
    compile_graph,
    compiled_graph,
)
from lendcore.risk.policy import FACTS, Policy, default_policy_text

DOCUMENT = json.loads(default_policy_text())
COMPILED = Policy(DOCUMENT)
REFERENCE = Policy(DOCUMENT, compile_tables=False)
DIFFERENTIAL = settings(
    max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def as_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def by_zen(graph: dict[str, Any], facts: dict[str, Any]) -> str:
    decision = zen.ZenEngine().create_decision(json.dumps(graph))
    try:
        return as_json(decision.evaluate(dict(facts))["result"])
    except Exception as exc:  # the facts zen-engine refuses (NaN, huge numbers)
        return f"error: {type(exc).__name__}"


def by_compiled(table: CompiledTable, facts: dict[str, Any]) -> str | None:
    """The compiled result as JSON, or None where the table leaves it to zen-engine."""
    try:
        return as_json(table.run(facts))
    except NeedsReference:
        return None


def table_of(graph: dict[str, Any]) -> dict[str, Any]:
    node = next(n for n in graph["nodes"] if n["type"] == "decisionTableNode")
    content: dict[str, Any] = node["content"]
    return content


def boundaries(content: dict[str, Any]) -> dict[str, list[float]]:
    """Every number written in a cell, per fact."""
    fields = {i["id"]: i["field"] for i in content["inputs"]}
    found: dict[str, list[float]] = {}
    for rule in content["rules"]:
        for key, cell in rule.items():
            if key in fields:
                for number in re.findall(r"-?\d+(?:\.\d+)?", cell):
                    found.setdefault(fields[key], []).append(float(number))
    return found


def near(value: float) -> st.SearchStrategy[float]:
    """A boundary, the floats next to it, and a decision's quantum (10^-6) away."""
    return st.sampled_from(
        [
            value,
            math.nextafter(value, math.inf),
            math.nextafter(value, -math.inf),
            value + 1e-6,
            value - 1e-6,
            value + 1e-13,
        ]
    )


ODD: st.SearchStrategy[Any] = st.sampled_from(
    [None, "", "x", True, False, [], 1e300, float("nan"), 2**64]
)
STRINGS = ["verified", "pending", "expired", "rejected", "clear", "hit", "not-screened"]
STRINGS += ["employed", "unemployed", "self-employed", "USD", "KES", "EUR", "GBP"]


def fact_values(field: str, numbers: list[float]) -> st.SearchStrategy[Any]:
    if field in ("kyc_status", "screening_status", "employment_status", "currency", "product"):
        typical: st.SearchStrategy[Any] = st.sampled_from(STRINGS) | st.text(max_size=8)
    elif field == "within_product_limits":
        typical = st.booleans()
    elif field in ("dti", "pti", "product_share_after"):
        typical = (
            st.integers(0, 2_000_000).map(lambda n: n / 1_000_000)
            | st.floats(0, 2)
            | st.just(99.0)
            | st.one_of([near(n) for n in numbers] or [st.just(0.5)])
        )
    else:  # whole numbers: age, exposures, book
        whole = [int(n) for n in numbers] or [0]
        typical = (
            st.integers(-1, 200)
            | st.integers(0, 10**12)
            | st.sampled_from(whole).flatmap(lambda n: st.integers(n - 2, n + 2))
        )
    return typical


@st.composite
def eligibility_facts(draw: st.DrawFn) -> dict[str, Any]:
    """Facts of the types `decision.policy_facts` gives; one in four draws
    one fact odd (another type, a value zen-engine refuses) or missing."""
    numbers = boundaries(table_of(DOCUMENT["eligibility"]))
    facts = {field: draw(fact_values(field, numbers.get(field, []))) for field in FACTS}
    if draw(st.integers(0, 3)) == 0:
        field = draw(st.sampled_from(FACTS))
        if draw(st.booleans()):
            del facts[field]
        else:
            facts[field] = draw(ODD)
    return facts


def test_the_shipped_policy_compiles_both_tables() -> None:
    assert COMPILED.compiled == {"eligibility": None, "pricing": None}
    assert set(REFERENCE.compiled) == {"eligibility", "pricing"}
    assert all(REFERENCE.compiled.values())  # the reference runs zen-engine only


@DIFFERENTIAL
@given(eligibility_facts())
def test_the_eligibility_table_compiled_is_zen_engines(facts: dict[str, Any]) -> None:
    graph = DOCUMENT["eligibility"]
    table = compiled_graph(graph)
    assert isinstance(table, CompiledTable)
    want = by_zen(graph, facts)
    got = by_compiled(table, facts)
    event("compiled" if got is not None else "left to zen-engine")
    assert got is None or got == want
    if not want.startswith("error"):
        assert COMPILED.eligibility(facts) == REFERENCE.eligibility(facts)


@settings(DIFFERENTIAL, max_examples=150)
@given(
    st.integers(-100, 1_200)
    | st.sampled_from([551, 572, 593, 620]).flatmap(lambda n: st.integers(n - 1, n))
    | st.floats(0, 1_000).map(lambda x: round(x, 3))
    | st.sampled_from([550.9999999999999, 620.0, 619.9999999999999])
)
def test_the_pricing_table_compiled_is_zen_engines(score: float) -> None:
    graph = DOCUMENT["pricing"]
    table = compiled_graph(graph)
    assert isinstance(table, CompiledTable)
    want = by_zen(graph, {"score": score})
    got = by_compiled(table, {"score": score})
    event("compiled" if got is not None else "left to zen-engine")
    assert got is None or got == want
    if isinstance(score, int):
        assert got is not None  # a whole score never needs zen-engine
        assert COMPILED.pricing(score) == REFERENCE.pricing(score)


def test_ordinary_facts_are_decided_in_python() -> None:
    table = compiled_graph(DOCUMENT["eligibility"])
    assert isinstance(table, CompiledTable)
    facts = {
        "age_years": 17,
        "kyc_status": "pending",
        "screening_status": "clear",
        "employment_status": "employed",
        "currency": "USD",
        "product": "consumer-annuity",
        "within_product_limits": False,
        "dti": 0.45,
        "pti": 0.351,
        "borrower_exposure_after_minor": 10_000_001,
        "group_exposure_after_minor": 0,
        "product_share_after": 0.25,
        "book_after_minor": 200_000_000,
    }
    hits = table.run(facts)
    assert [h["code"] for h in hits] == [
        "AGE_UNDER_18",
        "KYC_NOT_VERIFIED",
        "PRODUCT_LIMITS",
        "DTI_HIGH",
        "PTI_TOO_HIGH",
        "EXPOSURE_BORROWER_USD",
    ]
    assert as_json(hits) == by_zen(DOCUMENT["eligibility"], facts)


# --- random tables of everything the compiler supports --------------------------------

NUMBERS = [-5, 0, 0.4, 0.5, 1, 18, 100.25, 620, 10_000_000, 0.000001]
NUMBER_TEXT = st.sampled_from(NUMBERS).map(lambda n: format(n, "f").rstrip("0").rstrip("."))
WORDS = ["a", "b", "refer", "a,b", 'say "hi"', "", "é"]


def quoted(word: str) -> st.SearchStrategy[str]:
    if '"' in word:
        return st.just(f"'{word}'")
    return st.sampled_from([f'"{word}"', f"'{word}'"])


def number_item() -> st.SearchStrategy[str]:
    comparison = st.tuples(st.sampled_from(["<", "<=", ">", ">=", "==", "!=", ""]), NUMBER_TEXT)
    interval = st.tuples(
        st.sampled_from(["[", "("]), NUMBER_TEXT, NUMBER_TEXT, st.sampled_from(["]", ")"])
    )
    return comparison.map(lambda c: f"{c[0]} {c[1]}".strip()) | interval.map(
        lambda i: f"{i[0]}{i[1]}..{i[2]}{i[3]}"
    )


def string_item() -> st.SearchStrategy[str]:
    return st.tuples(st.sampled_from(["", "== ", "!= "]), st.sampled_from(WORDS)).flatmap(
        lambda pair: quoted(pair[1]).map(lambda text: pair[0] + text)
    )


def boolean_item() -> st.SearchStrategy[str]:
    return st.tuples(st.sampled_from(["", "== ", "!= "]), st.sampled_from(["true", "false"])).map(
        "".join
    )


ITEMS = {"number": number_item(), "string": string_item(), "boolean": boolean_item()}
OUTPUTS = ['"A"', "'b'", "0.0899", "10", "10.0", "-0", "1.50", "true", "false", "null", ""]
OUTPUTS += ['"0.1299"', "123456789012345", "00012"]


def cell(kind: str) -> st.SearchStrategy[str]:
    items = st.lists(ITEMS[kind], min_size=1, max_size=3).map(", ".join)
    return st.just("") | items


@st.composite
def random_table(draw: st.DrawFn) -> tuple[dict[str, Any], list[str]]:
    kinds = draw(st.lists(st.sampled_from(sorted(ITEMS)), min_size=1, max_size=3))
    fields = [f"f{n}" for n in range(len(kinds))]
    outputs = [f"o{n}" for n in range(draw(st.integers(1, 3)))]
    rules = []
    for number in range(draw(st.integers(0, 6))):
        rule = {"_id": f"r{number}"}
        for field, kind in zip(fields, kinds, strict=True):
            rule[f"in_{field}"] = draw(cell(kind))
        for output in outputs:
            rule[f"out_{output}"] = draw(st.sampled_from(OUTPUTS))
        rules.append(rule)
    content = {
        "hitPolicy": draw(st.sampled_from(["first", "collect"])),
        "inputs": [{"id": f"in_{f}", "name": f, "field": f} for f in fields],
        "outputs": [{"id": f"out_{o}", "name": o, "field": o} for o in outputs],
        "rules": rules,
    }
    return graph_of(content), kinds


def graph_of(content: dict[str, Any]) -> dict[str, Any]:
    node = {"id": "t", "type": "decisionTableNode", "name": "t", "position": {"x": 0, "y": 0}}
    return {
        "nodes": [
            {"id": "i", "type": "inputNode", "name": "i", "position": {"x": 0, "y": 0}},
            {**node, "content": content},
            {"id": "o", "type": "outputNode", "name": "o", "position": {"x": 0, "y": 0}},
        ],
        "edges": [
            {"id": "e1", "sourceId": "i", "targetId": "t", "type": "edge"},
            {"id": "e2", "sourceId": "t", "targetId": "o", "type": "edge"},
        ],
    }


def value_of(kind: str, constants: list[float]) -> st.SearchStrategy[Any]:
    """Values of a fact: typical ones, the table's own numbers (as ints where
    whole, as floats, and the floats next to them), and odd ones."""
    if kind == "number":
        own = constants or [0.0]
        wholes = [int(c) for c in own if c == int(c)] or [0]
        boundary = (
            st.sampled_from(wholes) | st.sampled_from(own) | st.sampled_from(own).flatmap(near)
        )
        typical: st.SearchStrategy[Any] = st.one_of(
            boundary, boundary, boundary, st.integers(-20, 30), st.floats(-50, 1_000)
        )
    elif kind == "string":
        typical = st.sampled_from(WORDS) | st.text(max_size=3)
    else:
        typical = st.booleans()
    return st.one_of(typical, typical, typical, typical, typical, typical, ODD)


@st.composite
def table_and_facts(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    graph, kinds = draw(random_table())
    numbers = boundaries(table_of(graph))
    facts = {
        f"f{n}": draw(value_of(kind, numbers.get(f"f{n}", []))) for n, kind in enumerate(kinds)
    }
    return graph, facts


@settings(DIFFERENTIAL, max_examples=200)
@given(table_and_facts())
def test_random_tables_compiled_are_zen_engines(
    case: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    graph, facts = case
    table = compile_graph(graph)  # everything generated is in the supported grammar
    want = by_zen(graph, facts)
    got = by_compiled(table, facts)
    event("compiled" if got is not None else "left to zen-engine")
    assert got is None or got == want


CELLS = ["< 18", "<= 18", "> 18", ">= 18", "== 18", "!= 18", "18", "-5", "< -5"]
CELLS += ["[1..18]", "[1..18)", "(1..18]", "(1..18)", "[18..1]", "[-1 .. 0.5]", "< 5, > 10"]
CELLS += ["0.5", "> 0.5", ">= 0.5", "(0.4..0.5]", "[0.4..0.5)", "0.1, 0.2", "!= 0.5"]
CELLS += ['"a"', "'a'", '!= "a"', '== "a"', '"a", "b"', '"a,b"', '""', "true", "!= false"]
CELLS += ["false", "true, false", "== true"]
VALUES: list[Any] = [-6, -5, -4, 0, 1, 2, 4, 5, 10, 11, 17, 18, 19, 17.5, 18.0, -5.0]
VALUES += [0.4, 0.5, 0.500001, 0.499999, 0.399999, 0.400001, 0.1, 0.2, 0.30000000000000004]
VALUES += [math.nextafter(0.5, 1), math.nextafter(18.0, 0), 1e-30, 1e20]
VALUES += ["a", "b", "a,b", "", "A", True, False, None, [1], {"x": 1}]


@pytest.mark.parametrize("text", CELLS)
def test_each_cell_decides_as_zen_engine_at_its_boundaries(text: str) -> None:
    """Cell by cell: wherever the compiled cell decides, zen-engine decides
    the same (without an error, which would make zen's rule not match)."""
    test = compile_cell(text)
    assert test is not None
    decided = 0
    for value in VALUES:
        try:
            got = test(value)
        except NeedsReference:
            continue
        decided += 1
        assert zen.evaluate_unary_expression(text, {"$": value}) is got, value
    assert decided >= 2  # a boolean cell decides True and False


# --- what does not compile, and facts left to zen-engine --------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "$ > 5 and $ < 10",
        'startsWith($, "a")',
        '> 5, "a"',  # two kinds in one cell
        "1e3",
        ".5",
        "null",
        '< "b"',
        "0.1234567890123456",  # more digits than a float holds exactly
        '"a\\"b"',
        "[1...2]",
    ],
)
def test_cells_outside_the_grammar_are_unsupported(text: str) -> None:
    with pytest.raises(Unsupported):
        compile_cell(text)


def policy_with(part: str, change: Any) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(default_policy_text())
    change(table_of(document[part]))
    return document


COMPILED_FACTS: dict[str, Any] = {
    "age_years": 40,
    "kyc_status": "verified",
    "screening_status": "clear",
    "employment_status": "employed",
    "currency": "USD",
    "product": "consumer-annuity",
    "within_product_limits": True,
    "dti": 0.5,
    "pti": 0.35,
    "borrower_exposure_after_minor": 10_000_000,
    "group_exposure_after_minor": 25_000_001,
    "product_share_after": 0.7000001,
    "book_after_minor": 100_000_001,
}


@pytest.mark.parametrize(
    ("part", "change", "why"),
    [
        (
            "eligibility",
            lambda t: t["rules"][1].update(in_age_years="$ > 75 and $ < 200"),
            "cell",
        ),
        ("pricing", lambda t: t["rules"][0].update(out_band='"A" + "1"'), "literal"),
        (
            "pricing",
            lambda t: t["outputs"].append({"id": "x", "name": "x", "field": "a.b"}),
            "name",
        ),
        ("pricing", lambda t: t.update(passThrough=True), "settings"),
        ("eligibility", "schema", "inputNode"),
    ],
)
def test_a_table_that_does_not_compile_runs_on_zen_engine(part: str, change: Any, why: str) -> None:
    if change == "schema":  # the request node checks the facts against a JSON schema
        document: dict[str, Any] = json.loads(default_policy_text())
        schema = {"type": "object", "properties": {"age_years": {"type": "integer"}}}
        document[part]["nodes"][0]["content"]["schema"] = json.dumps(schema)
    else:
        document = policy_with(part, change)
    policy = Policy(document)
    reason = policy.compiled[part]
    assert reason is not None and why in reason
    other = "pricing" if part == "eligibility" else "eligibility"
    assert policy.compiled[other] is None
    reference = Policy(document, compile_tables=False)
    for age in (17, 18, 75, 76, 199, 200):
        facts = {**COMPILED_FACTS, "age_years": age}
        assert policy.eligibility(facts) == reference.eligibility(facts)
    for score in (0, 551, 619, 620, 900):
        assert policy.pricing(score) == reference.pricing(score)


@pytest.mark.parametrize(
    ("change", "compiled"),
    [
        ({}, False),  # dti 0.5 and pti 0.35 sit on their rules' boundaries
        ({"dti": 0.500001, "pti": 0.349999}, True),
        ({"dti": 0.5000000000000001, "pti": 0.1}, False),  # zen sees 0.5
        ({"dti": 0.2, "pti": 0.1, "age_years": None}, False),
        ({"dti": 0.2, "pti": 0.1, "within_product_limits": 1}, False),
        ({"dti": 0.2, "pti": 0.1, "kyc_status": 3}, False),
    ],
)
def test_facts_a_compiled_cell_cannot_decide_go_to_zen_engine(
    change: dict[str, Any], compiled: bool
) -> None:
    facts = {**COMPILED_FACTS, **change}
    table = compiled_graph(DOCUMENT["eligibility"])
    assert isinstance(table, CompiledTable)
    assert (by_compiled(table, facts) is not None) is compiled
    assert COMPILED.eligibility(facts) == REFERENCE.eligibility(facts)
    if "dti" in change and change["dti"] == 0.5000000000000001:
        # Python's float is above 0.5, zen-engine's decimal is not: zen decides.
        codes = {h.code for h in COMPILED.eligibility(facts)}
        assert "DTI_HIGH" in codes and "DTI_TOO_HIGH" not in codes
