"""A Markov chain over monthly delinquency states, and the PD term structure it gives.

States, in this order: `current`, `1-30`, `31-60`, `61-90` (days past due at
month end), `default` (more than 90 days past due, or written off) and
`closed`. `default` and `closed` are absorbing: a loan never leaves them.

Estimation (`estimate_matrix`): from a history of (loan_id, month, state), one
row per loan and month (the first of the month), count every move of a loan
from one month to the next calendar month; a gap in a loan's history breaks
the chain (no move is counted across it). Each row of counts is divided by its
total. Rules for rows the data cannot fill:

- `default` and `closed` are absorbing by definition: their rows are the unit
  row (stay), whatever the history shows (a cure out of default is a new
  exposure, not a move of this chain);
- a non-absorbing state with no observed move out of it gets the unit row as
  well (stay where it is). That is neutral, not prudent: a loan in such a
  state never reaches default, so its PD from the chain is 0.
  `TransitionMatrix.fallback_states` names these rows so the caller can see
  that the data were too thin (and prefer the scorecard PD source).

The term structure: with P the one-month matrix, the probability that a loan
in state i is in default after m months is (P^m)[i, default]; because default
is absorbing this is the cumulative PD to month m and never decreases with m.
The marginal PD of month m is the cumulative PD of m less that of m - 1 (the
cumulative PD at month 0 is 1 for a loan already in default, else 0).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl
from numpy.typing import NDArray

from lendcore.ifrs9.config import Ifrs9InputInvalid, conform, refuse_rows

STATES: tuple[str, ...] = ("current", "1-30", "31-60", "61-90", "default", "closed")
DEFAULT = "default"
CLOSED = "closed"
ABSORBING: frozenset[str] = frozenset({DEFAULT, CLOSED})
# Days past due above this are default (in the chain and in the scorecard PD).
DEFAULT_DPD = 90

_ROW_TOLERANCE = 1e-9


@dataclass(frozen=True, slots=True, eq=False)
class TransitionMatrix:
    """One-month transition probabilities: `probabilities[i, j]` is the
    probability of moving from `states[i]` to `states[j]` in one month.

    Build one with `estimate_matrix` or `TransitionMatrix.of`, which check it.
    `observations[i]` is the number of moves seen out of `states[i]` (None
    for a matrix given by hand)."""

    states: tuple[str, ...]
    probabilities: NDArray[np.float64]
    default_state: str
    observations: tuple[int, ...] | None

    @classmethod
    def of(
        cls,
        states: Sequence[str],
        probabilities: Sequence[Sequence[float]] | NDArray[np.float64],
        default_state: str = DEFAULT,
        observations: Sequence[int] | None = None,
    ) -> TransitionMatrix:
        names = tuple(states)
        matrix = np.array(probabilities, dtype=np.float64)
        n = len(names)
        if n == 0 or len(set(names)) != n:
            raise Ifrs9InputInvalid("a transition matrix needs distinct, non-empty states")
        if matrix.shape != (n, n):
            raise Ifrs9InputInvalid(
                f"a transition matrix over {n} states must be {n} x {n}, not {matrix.shape}"
            )
        if not np.isfinite(matrix).all() or (matrix < 0).any() or (matrix > 1).any():
            raise Ifrs9InputInvalid("transition probabilities must lie between 0 and 1")
        sums = matrix.sum(axis=1)
        bad = [names[i] for i in range(n) if abs(sums[i] - 1.0) > _ROW_TOLERANCE]
        if bad:
            raise Ifrs9InputInvalid(
                f"the rows of state(s) {', '.join(bad)} do not add up to 1", states=bad
            )
        if default_state not in names:
            raise Ifrs9InputInvalid(f"the default state {default_state!r} is not a state")
        d = names.index(default_state)
        if matrix[d, d] != 1.0:
            raise Ifrs9InputInvalid(f"the default state {default_state!r} must be absorbing")
        counts = None if observations is None else tuple(observations)
        if counts is not None and len(counts) != n:
            raise Ifrs9InputInvalid("give one observation count per state")
        matrix.setflags(write=False)
        return cls(names, matrix, default_state, counts)

    def index(self, state: str) -> int:
        try:
            return self.states.index(state)
        except ValueError:
            raise Ifrs9InputInvalid(
                f"{state!r} is not a state of this matrix ({', '.join(self.states)})"
            ) from None

    @property
    def fallback_states(self) -> tuple[str, ...]:
        """Non-absorbing states of an estimated matrix with no observed move
        (their row is the unit row by default, see the module docstring)."""
        if self.observations is None:
            return ()
        absorbing = ABSORBING | {self.default_state}
        return tuple(
            s
            for s, seen in zip(self.states, self.observations, strict=True)
            if seen == 0 and s not in absorbing
        )

    def to_frame(self) -> pl.DataFrame:
        """(from_state, to_state, probability), one row per pair of states."""
        n = len(self.states)
        return pl.DataFrame(
            {
                "from_state": [s for s in self.states for _ in range(n)],
                "to_state": list(self.states) * n,
                "probability": self.probabilities.reshape(-1),
            },
            schema={"from_state": pl.String, "to_state": pl.String, "probability": pl.Float64},
        )


def delinquency_state(dpd: pl.Expr) -> pl.Expr:
    """The chain state (and scorecard bucket) of a days-past-due expression:
    0 or less `current`, 1-30, 31-60, 61-90, above 90 `default`."""
    return (
        pl.when(dpd <= 0)
        .then(pl.lit("current"))
        .when(dpd <= 30)
        .then(pl.lit("1-30"))
        .when(dpd <= 60)
        .then(pl.lit("31-60"))
        .when(dpd <= DEFAULT_DPD)
        .then(pl.lit("61-90"))
        .otherwise(pl.lit(DEFAULT))
    )


def estimate_matrix(history: pl.DataFrame) -> TransitionMatrix:
    """The one-month matrix over `STATES` estimated from `history`
    (`loan_id` i64, `month` date on the 1st, `state` str; one row per loan and month)."""
    history = conform(
        history,
        "history",
        {"loan_id": pl.Int64, "month": pl.Date, "state": pl.String},
        not_null=("loan_id", "month", "state"),
    )
    refuse_rows(
        history,
        ~pl.col("state").is_in(STATES),
        f"have a state outside {', '.join(STATES)}",
        "history",
    )
    refuse_rows(history, pl.col("month").dt.day() != 1, "have a month not on the 1st", "history")
    refuse_rows(
        history,
        pl.struct("loan_id", "month").is_duplicated(),
        "repeat a (loan_id, month)",
        "history",
    )
    index = {s: i for i, s in enumerate(STATES)}
    moves = (
        history.sort("loan_id", "month")
        .with_columns(
            next_state=pl.col("state").shift(-1).over("loan_id"),
            next_month=pl.col("month").shift(-1).over("loan_id"),
        )
        .filter(
            pl.col("next_month") == pl.col("month").dt.offset_by("1mo"),
            ~pl.col("state").is_in(list(ABSORBING)),
        )
        .group_by("state", "next_state")
        .len()
        .with_columns(
            i=pl.col("state").replace_strict(index, return_dtype=pl.Int64),
            j=pl.col("next_state").replace_strict(index, return_dtype=pl.Int64),
        )
    )
    n = len(STATES)
    counts = np.zeros((n, n), dtype=np.float64)
    np.add.at(
        counts,
        (moves.get_column("i").to_numpy(), moves.get_column("j").to_numpy()),
        moves.get_column("len").to_numpy().astype(np.float64),
    )
    totals = counts.sum(axis=1)
    observed = totals > 0
    matrix = np.eye(n, dtype=np.float64)
    matrix[observed] = counts[observed] / totals[observed, None]
    return TransitionMatrix.of(
        STATES, matrix, DEFAULT, observations=[int(t) for t in totals.round()]
    )


def _cumulative(matrix: TransitionMatrix, months: int) -> NDArray[np.float64]:
    # Row m (0..months) holds, per starting state, P(in default after m months).
    if isinstance(months, bool) or not isinstance(months, int) or months < 0:
        raise Ifrs9InputInvalid(f"months must be a non-negative int, got {months!r}")
    d = matrix.states.index(matrix.default_state)
    n = len(matrix.states)
    out = np.empty((months + 1, n), dtype=np.float64)
    power = np.eye(n, dtype=np.float64)
    out[0] = power[:, d]
    for m in range(1, months + 1):
        power = power @ matrix.probabilities
        out[m] = power[:, d]
    # Mathematically non-decreasing (default is absorbing); the running maximum
    # removes any rounding wobble, and the clip any excess above 1.
    return np.clip(np.maximum.accumulate(out, axis=0), 0.0, 1.0)


def cumulative_default(matrix: TransitionMatrix, from_state: str, months: int) -> list[float]:
    """Cumulative PD after 1, 2, ..., `months` months for a loan in `from_state`."""
    i = matrix.index(from_state)
    return [float(x) for x in _cumulative(matrix, months)[1:, i]]


def pd_term_structure(matrix: TransitionMatrix, horizon_months: int) -> pl.DataFrame:
    """(state str, month i32, cumulative_pd f64, marginal_pd f64) for every
    state and month 1..`horizon_months`, ordered by state (matrix order) then month."""
    cumulative = _cumulative(matrix, horizon_months)
    marginal = np.diff(cumulative, axis=0)
    n = len(matrix.states)
    return pl.DataFrame(
        {
            "state": [s for s in matrix.states for _ in range(horizon_months)],
            "month": list(range(1, horizon_months + 1)) * n,
            "cumulative_pd": cumulative[1:].T.reshape(-1),
            "marginal_pd": marginal.T.reshape(-1),
        },
        schema={
            "state": pl.String,
            "month": pl.Int32,
            "cumulative_pd": pl.Float64,
            "marginal_pd": pl.Float64,
        },
    )


def twelve_month_pd(matrix: TransitionMatrix) -> dict[str, float]:
    """The 12-month PD of each state of the matrix."""
    row = _cumulative(matrix, 12)[12]
    return {s: float(row[i]) for i, s in enumerate(matrix.states)}
