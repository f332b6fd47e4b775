"""Policy decision tables (GoRules JDM) compiled to Python, zen-engine the reference.

The credit policy's tables are JSON Decision Models that zen-engine runs. Each
evaluation crosses from Python to Rust and back with the facts, about 0.1 ms;
the rules themselves are a few comparisons. `compile_graph` turns a graph of
the shape the policy uses (request -> one decision table -> response) into
Python predicates once per table content (`compiled_graph` caches by the
SHA-256 of the canonical JSON), and `CompiledTable.run` evaluates them in pure
Python with zen-engine's result, to the value and the type.

What compiles (anything else is `Unsupported`, and the caller keeps zen-engine
for that table; never a guess):

- hit policy `first` or `collect`; no pass-through, input field or output path;
- input columns on a plain fact name; output columns to a plain field name;
- input cells in zen's unary form, made of comma-separated items (any one
  matching matches) of one kind per cell: numbers (`< 18`, `>= 0.5`, `== 3`,
  `!= 3`, `42`, intervals `[a..b]`, `(a..b)`, `[a..b)`, `(a..b]`; numbers of
  at most 15 significant digits below 10^15), strings (`"refer"`, `'x'`,
  `== "x"`, `!= "x"`, without backslashes) or booleans (`true`, `false`,
  `== true`, `!= false`); an empty cell matches anything;
- output cells that are literals (string, number, boolean, null). Their values
  are taken from zen-engine itself when the table compiles (evaluations of
  the table's outputs alone): zen returns a whole number as an int, and a
  `null` as None in a collected row but as no key in a first match.

At run time a cell decides only what it can decide exactly, and otherwise
raises `NeedsReference` so that the whole table is evaluated by zen-engine:

- a fact of another type than the cell's kind (a missing fact, None, a string
  where a number is expected, a bool where a number is): zen-engine's
  answer there (an error that makes the rule not match, or no match) is its own;
- a float within 10^-12 (relative) of a constant of the cell: zen-engine turns
  a float into a decimal of about 16 significant digits (0.5000000000000001
  becomes 0.5), so near a boundary the float's exact value does not say which
  side zen sees; away from every boundary it does;
- a number beyond 2^53 (an int) or 10^15 (a float), NaN or infinity, or a
  fact that is not a number, string, boolean or None, in any fact of the
  context, tested or not (zen-engine refuses a whole context it cannot
  convert).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from threading import Lock
from typing import Any, Final

import zen

# Limits of the numbers a cell may hold: exact as a float (15 significant digits).
DIGITS_MAX: Final = 15
MAGNITUDE_MAX: Final = 10**15
INT_FACT_MAX: Final = 2**53
FLOAT_FACT_MAX: Final = 1e15
# A float this close to a constant (relative) is left to zen-engine.
NEAR_RELATIVE: Final = 1e-12
NEAR_ABSOLUTE: Final = 1e-27  # zen's decimals have 28 places: below this is 0

_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_NUMBER: Final = re.compile(r"-?[0-9]+(?:\.[0-9]+)?\Z")
_STRING: Final = re.compile(r"\"[^\"\\]*\"\Z|'[^'\\]*'\Z")
_INTERVAL: Final = re.compile(r"([\[(])\s*(\S+?)\s*\.\.\s*(\S+?)\s*([\])])\Z")
_COMPARISON: Final = re.compile(r"(<=|>=|==|!=|<|>)\s*(.+)\Z")
_TABLE_KEYS: Final = frozenset({"hitPolicy", "inputs", "outputs", "rules"})
_COLUMN_KEYS: Final = frozenset({"id", "name", "field"})

Predicate = Callable[[Any], bool]


class Unsupported(Exception):
    """The graph uses something the compiler does not do: zen-engine runs it."""


class NeedsReference(Exception):
    """These facts are outside what the compiled cells decide exactly."""


@dataclass(frozen=True, slots=True)
class CompiledTable:
    """One decision table as Python: rules in order, each a tuple of
    (fact, predicate) for its non-empty cells and the output it yields."""

    hit_policy: str  # "first" | "collect"
    rules: tuple[tuple[tuple[tuple[str, Predicate], ...], Mapping[str, Any]], ...]

    def run(self, facts: Mapping[str, Any]) -> Any:
        """zen-engine's `result` for `facts`; raises NeedsReference where a
        cell cannot decide exactly (a missing fact included)."""
        first = self.hit_policy == "first"
        hits: list[dict[str, Any]] = []
        for value in facts.values():
            # zen-engine refuses the whole context for a value it cannot
            # convert (NaN, 1e300, 2**64), whichever fact holds it.
            kind = type(value)
            if kind is float:
                if not -FLOAT_FACT_MAX < value < FLOAT_FACT_MAX:
                    raise NeedsReference("a float zen-engine may refuse")
            elif kind is int:
                if not -INT_FACT_MAX <= value <= INT_FACT_MAX:
                    raise NeedsReference("an int zen-engine may refuse")
            elif kind is not str and kind is not bool and value is not None:
                raise NeedsReference(f"a fact of type {kind.__name__}")
        try:
            for tests, output in self.rules:
                for fact, test in tests:
                    if not test(facts[fact]):
                        break
                else:
                    if first:
                        return dict(output)
                    hits.append(dict(output))
        except KeyError:
            raise NeedsReference("a fact the table tests is missing") from None
        return {} if first else hits


def canonical_text(graph: Mapping[str, Any]) -> str:
    return json.dumps(graph, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def compiled_graph(graph: Mapping[str, Any]) -> CompiledTable | Unsupported:
    """The compiled table of `graph` (or why it does not compile), once per
    content: kept by the SHA-256 of its canonical JSON (a policy's version
    is the same hash of the whole document)."""
    text = canonical_text(graph)
    digest = hashlib.sha256(text.encode()).hexdigest()
    compiled = _by_digest.get(digest)
    if compiled is None:
        try:
            compiled = compile_graph(json.loads(text))
        except Unsupported as reason:
            compiled = reason.with_traceback(None)
        with _by_digest_lock:
            if len(_by_digest) >= COMPILED_MAX:
                _by_digest.clear()
            _by_digest[digest] = compiled
    return compiled


# Compiled tables kept (policies are versioned documents: a process sees a
# few); past this the cache starts afresh, so memory is bounded.
COMPILED_MAX: Final = 128
_by_digest: dict[str, CompiledTable | Unsupported] = {}
_by_digest_lock = Lock()


def compile_graph(graph: Mapping[str, Any]) -> CompiledTable:
    """Compile a request -> decision table -> response graph; Unsupported otherwise."""
    content = _the_table(graph)
    hit_policy = content.get("hitPolicy")
    if hit_policy not in ("first", "collect"):
        raise Unsupported(f"hit policy {hit_policy!r}")
    extra = set(content) - _TABLE_KEYS
    if extra:
        raise Unsupported(f"table settings {sorted(extra)}")
    inputs = _columns(content.get("inputs"), "input")
    outputs = _columns(content.get("outputs"), "output")
    if len(set(outputs.values())) != len(outputs):
        raise Unsupported("two output columns write the same field")
    rules = content.get("rules")
    if not isinstance(rules, list):
        raise Unsupported("rules are not a list")
    compiled_rules = []
    for rule in rules:
        if not isinstance(rule, Mapping):
            raise Unsupported("a rule is not an object")
        tests = []
        for key, cell in rule.items():
            if key.startswith("_") or key in outputs:
                continue
            if key not in inputs:
                raise Unsupported(f"a rule has a cell {key!r} of no column")
            if not isinstance(cell, str):
                raise Unsupported(f"cell {cell!r} is not text")
            test = compile_cell(cell)
            if test is not None:
                tests.append((inputs[key], test))
        for key in outputs:
            cell = rule.get(key, "")
            if not isinstance(cell, str) or (cell.strip() and _literal(cell.strip()) is None):
                raise Unsupported(f"output cell {cell!r} is not a literal")
        compiled_rules.append(tuple(tests))
    values = _output_values(content, outputs, rules)
    return CompiledTable(str(hit_policy), tuple(zip(compiled_rules, values, strict=True)))


def _the_table(graph: Mapping[str, Any]) -> Mapping[str, Any]:
    nodes, edges = graph.get("nodes"), graph.get("edges")
    if not isinstance(nodes, list) or not isinstance(edges, list):
        raise Unsupported("not a graph of nodes and edges")
    kinds = {}
    for node in nodes:
        if not isinstance(node, Mapping):
            raise Unsupported("a node is not an object")
        kinds[node.get("id")] = node.get("type")
        if node.get("type") in ("inputNode", "outputNode") and any(
            value not in ("", None, {}) for value in dict(node.get("content") or {}).values()
        ):
            # zen-engine may validate the facts or the result against a schema.
            raise Unsupported(f"{node.get('type')} settings {node.get('content')!r}")
    by_kind = sorted(str(kind) for kind in kinds.values())
    if len(kinds) != len(nodes) or by_kind != ["decisionTableNode", "inputNode", "outputNode"]:
        raise Unsupported(f"nodes {by_kind}: expected request, one decision table, response")
    links = set()
    for edge in edges:
        if not isinstance(edge, Mapping):
            raise Unsupported("an edge is not an object")
        links.add((kinds.get(edge.get("sourceId")), kinds.get(edge.get("targetId"))))
    expected = {("inputNode", "decisionTableNode"), ("decisionTableNode", "outputNode")}
    if len(edges) != 2 or links != expected:
        raise Unsupported("edges other than request -> table -> response")
    table = next(n for n in nodes if n.get("type") == "decisionTableNode")
    content = table.get("content")
    if not isinstance(content, Mapping):
        raise Unsupported("the table has no content")
    return content


def _columns(columns: Any, what: str) -> dict[str, str]:
    """Column id -> field name, plain names only."""
    if not isinstance(columns, list):
        raise Unsupported(f"{what} columns are not a list")
    found: dict[str, str] = {}
    for column in columns:
        if not isinstance(column, Mapping) or set(column) - _COLUMN_KEYS:
            raise Unsupported(f"{what} column {column!r}")
        field, key = column.get("field"), column.get("id")
        if not isinstance(field, str) or not _NAME.match(field) or not isinstance(key, str):
            raise Unsupported(f"{what} column field {field!r}: not a plain name")
        if key in found:
            raise Unsupported(f"two {what} columns with id {key!r}")
        found[key] = field
    return found


def _output_values(
    content: Mapping[str, Any], outputs: Mapping[str, str], rules: list[Any]
) -> list[Mapping[str, Any]]:
    """Each rule's output as zen-engine builds it, from the table's output
    cells alone (every input cell empty) under the table's hit policy: zen
    keeps a null output in a collected row and drops it from a first match.
    One evaluation for `collect` (every rule collected), one a rule for `first`."""
    cells = [{key: rule[key] for key in outputs if key in rule} for rule in rules]
    if content["hitPolicy"] == "collect":
        rows = _probe(content, "collect", cells)
        if not isinstance(rows, list) or len(rows) != len(rules):
            raise Unsupported("the outputs do not give one row per rule")
        return [dict(row) for row in rows]
    values: list[Mapping[str, Any]] = []
    for one in cells:
        row = _probe(content, "first", [one])
        if not isinstance(row, Mapping):
            raise Unsupported("a rule's outputs do not give a row")
        values.append(dict(row))
    return values


def _probe(content: Mapping[str, Any], hit_policy: str, rules: list[dict[str, Any]]) -> Any:
    table = {"hitPolicy": hit_policy, "inputs": [], "outputs": content["outputs"], "rules": rules}
    graph = {
        "nodes": [
            {"id": "in", "type": "inputNode", "name": "in", "position": {"x": 0, "y": 0}},
            {
                "id": "table",
                "type": "decisionTableNode",
                "name": "table",
                "position": {"x": 0, "y": 0},
                "content": table,
            },
            {"id": "out", "type": "outputNode", "name": "out", "position": {"x": 0, "y": 0}},
        ],
        "edges": [
            {"id": "a", "sourceId": "in", "targetId": "table", "type": "edge"},
            {"id": "b", "sourceId": "table", "targetId": "out", "type": "edge"},
        ],
    }
    try:
        return zen.ZenEngine().create_decision(json.dumps(graph)).evaluate({})["result"]
    except Exception as exc:  # zen raises plain exceptions
        raise Unsupported(f"the outputs do not evaluate: {exc}") from None


# --- cells -------------------------------------------------------------------------


def compile_cell(text: str) -> Predicate | None:
    """A unary cell as a predicate on the fact (None for an empty cell, which
    matches anything); Unsupported when the cell is outside the grammar of
    the module's docstring."""
    items = _split(text.strip())
    if items is None:
        return None
    parsed = [_item(item) for item in items]
    kinds = {kind for kind, _, _ in parsed}
    if len(kinds) != 1:
        raise Unsupported(f"cell {text!r} mixes kinds {sorted(kinds)}")
    kind = kinds.pop()
    tests = tuple(test for _, test, _ in parsed)
    if kind == "number":
        constants = tuple(value for _, _, values in parsed for value in values)
        return _numeric_cell(tests, constants)
    return _typed_cell(str if kind == "string" else bool, tests)


def _split(text: str) -> list[str] | None:
    """Top-level comma-separated items (a comma inside quotes is text)."""
    if not text:
        return None
    items, current, quote = [], [], ""
    for char in text:
        if quote:
            current.append(char)
            if char == quote:
                quote = ""
        elif char in "\"'":
            quote = char
            current.append(char)
        elif char == ",":
            items.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    if quote:
        raise Unsupported(f"cell {text!r}: an unclosed string")
    items.append("".join(current).strip())
    if not all(items):
        raise Unsupported(f"cell {text!r}: an empty item")
    return items


def _item(text: str) -> tuple[str, Predicate, list[float]]:
    """(kind, test, numeric constants) of one item."""
    interval = _INTERVAL.match(text)
    if interval:
        opening, low_text, high_text, closing = interval.groups()
        low, high = _number(low_text), _number(high_text)
        if low is None or high is None:
            raise Unsupported(f"interval {text!r}")
        return "number", _between(low, high, opening == "[", closing == "]"), [low, high]
    comparison = _COMPARISON.match(text)
    operator, operand = comparison.groups() if comparison else ("==", text)
    literal = _literal(operand.strip())
    if literal is None:
        raise Unsupported(f"cell item {text!r}")
    kind, value = literal
    if operator in ("==", "!="):
        negate = operator == "!="
        if kind == "number":
            return kind, _equals(value, negate), [value]
        if kind == "null":
            raise Unsupported(f"cell item {text!r}: null")
        return kind, (lambda x: x != value) if negate else (lambda x: x == value), []
    if kind != "number":
        raise Unsupported(f"cell item {text!r}: {operator} on a {kind}")
    return kind, _ordered(operator, value), [value]


def _literal(text: str) -> tuple[str, Any] | None:
    if _STRING.match(text):
        return "string", text[1:-1]
    if text in ("true", "false"):
        return "boolean", text == "true"
    if text == "null":
        return "null", None
    number = _number(text)
    return None if number is None else ("number", number)


def _number(text: str) -> int | float | None:
    """A number of the cell as an int (a whole one) or a float (exact within
    the comparison band: at most 15 significant digits)."""
    if not _NUMBER.match(text):
        return None
    exact = Decimal(text)
    digits = exact.as_tuple().digits
    significant = len("".join(map(str, digits)).lstrip("0"))
    if significant > DIGITS_MAX or abs(exact) >= MAGNITUDE_MAX:
        return None
    return int(exact) if exact == exact.to_integral_value() else float(exact)


def _between(low: float, high: float, low_in: bool, high_in: bool) -> Predicate:
    if low_in and high_in:
        return lambda x: low <= x <= high
    if low_in:
        return lambda x: low <= x < high
    if high_in:
        return lambda x: low < x <= high
    return lambda x: low < x < high


def _equals(value: float, negate: bool) -> Predicate:
    return (lambda x: x != value) if negate else (lambda x: x == value)


def _ordered(operator: str, value: float) -> Predicate:
    if operator == "<":
        return lambda x: x < value
    if operator == "<=":
        return lambda x: x <= value
    if operator == ">":
        return lambda x: x > value
    return lambda x: x >= value


def _any(tests: tuple[Predicate, ...]) -> Predicate:
    if len(tests) == 1:
        return tests[0]
    return lambda x: any(test(x) for test in tests)


def _numeric_cell(tests: tuple[Predicate, ...], constants: tuple[float, ...]) -> Predicate:
    """Numbers only (never a bool), and a float not near any constant."""
    bands = tuple((c, NEAR_RELATIVE * max(1.0, abs(c)) + NEAR_ABSOLUTE) for c in constants)
    test = _any(tests)

    def cell(x: Any) -> bool:
        kind = type(x)
        if kind is int:
            if -INT_FACT_MAX <= x <= INT_FACT_MAX:
                return test(x)
        elif kind is float and -FLOAT_FACT_MAX < x < FLOAT_FACT_MAX:  # NaN fails too
            for constant, band in bands:
                if abs(x - constant) <= band + NEAR_RELATIVE * abs(x):
                    raise NeedsReference("a float at a boundary")
            return test(x)
        raise NeedsReference("a fact zen-engine converts its own way")

    return cell


def _typed_cell(kind: type, tests: tuple[Predicate, ...]) -> Predicate:
    test = _any(tests)

    def cell(x: Any) -> bool:
        if type(x) is not kind:
            raise NeedsReference(f"a fact that is not a {kind.__name__}")
        return test(x)

    return cell
