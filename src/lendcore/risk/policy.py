"""Credit policy as data: decision tables a risk manager edits, run by zen-engine.

A policy is one JSON document with two GoRules JSON Decision Model (JDM) graphs:

- ``eligibility``: a decision table with hit policy ``collect``; every rule that
  matches the application's facts yields ``{code, text, action}`` where action
  is ``decline`` or ``refer``. An application that matches no rule passes.
- ``pricing``: a decision table with hit policy ``first`` on the score; the
  first matching row gives ``{band, annual_rate, action}`` (approve, refer or
  decline), the rate being clamped to the product's limits afterwards.

The version is the SHA-256 of the canonical document, so a stored decision
names exactly the rules it ran. Graphs are compiled once per version and
process, twice: by zen-engine, the reference, and into Python predicates
(`risk.jdm`), which evaluate them without crossing into Rust and give
zen-engine's result exactly (a differential test proves it). A table the
Python compiler does not support, and facts a compiled cell cannot decide
exactly (a float at a rule's boundary, a fact of an unexpected type), are
evaluated by zen-engine; `Policy.compiled` says which tables run in Python. The document is validated when loaded (structure, hit policies,
outputs, every rule's expressions compiled and evaluated once on a probe), so
a table that does not parse is refused with the node and field named.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path
from typing import Any, Final

import zen

from lendcore.errors import InvalidInput
from lendcore.risk.jdm import CompiledTable, NeedsReference, Unsupported, compiled_graph

POLICY_FORMAT: Final = "lendcore.policy/1"
ACTIONS_ELIGIBILITY: Final = ("decline", "refer")
ACTIONS_PRICING: Final = ("approve", "refer", "decline")
DEFAULT_POLICY: Final = Path(__file__).with_name("policies") / "default.json"
# Pricing rows kept per policy, one per whole score (a scorecard's scores span
# a few hundred points): memory is bounded whatever scores come.
PRICED_SCORES_MAX: Final = 4_096

# The facts the eligibility table may test (computed by `decision.facts`).
FACTS: Final = (
    "age_years",
    "kyc_status",
    "screening_status",
    "employment_status",
    "currency",
    "product",
    "within_product_limits",
    "dti",
    "pti",
    "borrower_exposure_after_minor",
    "group_exposure_after_minor",
    "product_share_after",
    "book_after_minor",
)


class PolicyInvalid(InvalidInput):
    code = "POLICY_INVALID"


@dataclass(frozen=True, slots=True)
class PolicyHit:
    code: str
    text: str
    action: str  # decline | refer


@dataclass(frozen=True, slots=True)
class Pricing:
    band: str
    annual_rate: Decimal
    action: str  # approve | refer | decline
    code: str
    text: str


class Policy:
    """A validated policy document, compiled."""

    def __init__(self, document: Mapping[str, Any], *, compile_tables: bool = True) -> None:
        """`compile_tables=False` keeps zen-engine for every table: the
        reference, for differential tests and benchmarks."""
        self.document = _check_document(document)
        self.version = policy_version(self.document)
        self.name = str(self.document.get("name", "policy"))
        engine = zen.ZenEngine()
        try:
            self._eligibility = engine.create_decision(json.dumps(self.document["eligibility"]))
            self._pricing = engine.create_decision(json.dumps(self.document["pricing"]))
        except Exception as exc:  # zen raises plain exceptions with its own messages
            raise PolicyInvalid(f"the policy's decision graphs do not compile: {exc}") from None
        self._tables: dict[str, CompiledTable | Unsupported] = {
            part: compiled_graph(self.document[part])
            if compile_tables
            else Unsupported("zen-engine asked for")
            for part in ("eligibility", "pricing")
        }
        self._priced: dict[int, Pricing] = {}
        _probe(self)

    @property
    def compiled(self) -> dict[str, str | None]:
        """Per table: None when it runs as compiled Python, else why zen-engine runs it."""
        return {
            part: None if isinstance(table, CompiledTable) else str(table)
            for part, table in self._tables.items()
        }

    def _evaluate(self, part: str, facts: Mapping[str, Any]) -> Any:
        table = self._tables[part]
        if isinstance(table, CompiledTable):
            try:
                return table.run(facts)
            except NeedsReference:
                pass  # zen-engine decides these facts
        decision = self._eligibility if part == "eligibility" else self._pricing
        return _evaluate(decision, facts, part)

    def eligibility(self, facts: Mapping[str, Any]) -> tuple[PolicyHit, ...]:
        result = self._evaluate("eligibility", facts)
        rows = result if isinstance(result, list) else [result] if result else []
        hits = []
        for row in rows:
            action = str(row.get("action", ""))
            if action not in ACTIONS_ELIGIBILITY:
                raise PolicyInvalid(
                    f"an eligibility rule gave action {action!r}: expected decline or refer"
                )
            hits.append(PolicyHit(str(row.get("code", "")), str(row.get("text", "")), action))
        return tuple(hits)

    def pricing(self, score: int) -> Pricing:
        """The pricing row for `score`; a whole score's is kept (a pure
        function of the policy and the score, and scores are few)."""
        kept = self._priced.get(score) if type(score) is int else None
        if kept is None:
            kept = self._price(score)
            if type(score) is int and len(self._priced) < PRICED_SCORES_MAX:
                self._priced[score] = kept
        return kept

    def _price(self, score: int) -> Pricing:
        row = self._evaluate("pricing", {"score": score})
        if isinstance(row, list):
            row = row[0] if row else {}
        if not row:
            raise PolicyInvalid(
                f"no pricing row matches score {score}: the table must cover every score"
            )
        action = str(row.get("action", ""))
        if action not in ACTIONS_PRICING:
            raise PolicyInvalid(
                f"a pricing row gave action {action!r}: expected approve, refer or decline"
            )
        try:
            rate = Decimal(str(row.get("annual_rate", "")))
        except InvalidOperation:
            raise PolicyInvalid(
                f"a pricing row gave annual_rate {row.get('annual_rate')!r}"
            ) from None
        return Pricing(
            band=str(row.get("band", "")),
            annual_rate=rate,
            action=action,
            code=str(row.get("code", "")),
            text=str(row.get("text", "")),
        )


def _evaluate(decision: Any, facts: Mapping[str, Any], which: str) -> Any:
    try:
        return decision.evaluate(dict(facts))["result"]
    except Exception as exc:
        raise PolicyInvalid(f"the {which} table failed on these facts: {exc}") from None


def canonical(document: Mapping[str, Any]) -> str:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def policy_version(document: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical(document).encode()).hexdigest()


def _check_document(document: Any) -> dict[str, Any]:
    if not isinstance(document, Mapping):
        raise PolicyInvalid("a policy is one JSON object")
    if document.get("format") != POLICY_FORMAT:
        raise PolicyInvalid(f"policy field format: expected {POLICY_FORMAT!r}", field="format")
    for part, policy in (("eligibility", "collect"), ("pricing", "first")):
        graph = document.get(part)
        if not isinstance(graph, Mapping) or not isinstance(graph.get("nodes"), list):
            raise PolicyInvalid(
                f"policy field {part}: expected a JDM graph with nodes and edges", field=part
            )
        tables = [
            n
            for n in graph["nodes"]
            if isinstance(n, Mapping) and n.get("type") == "decisionTableNode"
        ]
        if len(tables) != 1:
            raise PolicyInvalid(
                f"policy field {part}: expected exactly one decision table", field=part
            )
        content = tables[0].get("content", {})
        if content.get("hitPolicy") != policy:
            raise PolicyInvalid(
                f"policy field {part}.hitPolicy: expected {policy!r}", field=f"{part}.hitPolicy"
            )
        outputs = {o.get("field") for o in content.get("outputs", [])}
        wanted = {"code", "text", "action"} | (
            {"band", "annual_rate"} if part == "pricing" else set()
        )
        if not wanted <= outputs:
            missing = ", ".join(sorted(wanted - outputs))
            raise PolicyInvalid(
                f"policy field {part}.outputs: missing {missing}", field=f"{part}.outputs"
            )
        if part == "eligibility":
            unknown = {i.get("field") for i in content.get("inputs", [])} - set(FACTS)
            if unknown:
                raise PolicyInvalid(
                    f"policy field eligibility.inputs: unknown fact {sorted(unknown)[0]!r} "
                    f"(known: {', '.join(FACTS)})",
                    field="eligibility.inputs",
                )
        _check_cells(part, content)
    return dict(document)


_PROBE_FACTS: Final[dict[str, Any]] = {
    "age_years": 40,
    "kyc_status": "verified",
    "screening_status": "clear",
    "employment_status": "employed",
    "currency": "USD",
    "product": "probe",
    "within_product_limits": True,
    "dti": 0.1,
    "pti": 0.05,
    "borrower_exposure_after_minor": 0,
    "group_exposure_after_minor": 0,
    "product_share_after": 0.0,
    "book_after_minor": 0,
    "score": 650,
}


def _check_cells(part: str, content: Mapping[str, Any]) -> None:
    """Compile every cell: zen-engine treats a cell that does not parse as a rule
    that never matches, so a typo would silently switch a rule off."""
    inputs = {i["id"]: i["field"] for i in content.get("inputs", [])}
    outputs = {o["id"]: o["field"] for o in content.get("outputs", [])}
    for number, rule in enumerate(content.get("rules", []), start=1):
        for cell, text in rule.items():
            if cell == "_id" or not str(text).strip():
                continue
            where = f"{part} rule {number} ({rule.get('_id', '')}), column {inputs.get(cell) or outputs.get(cell) or cell}"
            try:
                if cell in inputs:
                    zen.evaluate_unary_expression(str(text), {"$": _PROBE_FACTS.get(inputs[cell])})
                elif cell in outputs:
                    zen.evaluate_expression(str(text), {})
                else:
                    raise PolicyInvalid(f"policy {where}: no such column", field=part)
            except PolicyInvalid:
                raise
            except Exception as exc:
                reason = str(exc).split("\n")[0][:200]
                raise PolicyInvalid(
                    f"policy {where}: {text!r} does not parse: {reason}", field=part
                ) from None


def _probe(policy: Policy) -> None:
    """Run both tables once on plausible facts, and every score band."""
    policy.eligibility({k: v for k, v in _PROBE_FACTS.items() if k != "score"})
    for score in (0, 300, 600, 900):
        policy.pricing(score)


@lru_cache(maxsize=64)
def _compiled(text: str) -> Policy:
    return Policy(json.loads(text))


def policy_from_text(text: str) -> Policy:
    """A compiled policy from its JSON text, compiled once per process."""
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        raise PolicyInvalid(
            f"the policy is not valid JSON: {exc.msg} at line {exc.lineno}"
        ) from None
    return _compiled(text)


def default_policy_text() -> str:
    return DEFAULT_POLICY.read_text()
