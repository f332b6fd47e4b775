"""Watch-list screening (pure): names and dates of birth against lists, fuzzily.

Names are normalised first (transliterated to ASCII with anyascii, so "Müller",
"Mueller" and "Мюллер" meet; lower case; punctuation, titles and company forms
dropped). The name score is rapidfuzz's token_sort_ratio, which ignores word
order ("Petrov Ivan" is "Ivan Petrov"); when both names have two words or more,
token_set_ratio counts too, a little discounted, so a missing middle name still
matches. The date of birth then moves the score: the same date adds, the same
year adds less, a different year takes a lot away (two people of one name and
different ages are two people). A candidate at or above the threshold is a hit,
referred to a person.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Final

from anyascii import anyascii
from rapidfuzz import fuzz, process

from lendcore.errors import InvalidInput

THRESHOLD_DEFAULT: Final = 85.0
# Score changes for the date of birth (points of 100).
DOB_EXACT_BONUS: Final = 10.0
DOB_YEAR_BONUS: Final = 5.0
DOB_MISMATCH_PENALTY: Final = 20.0
# token_set_ratio finds a name inside a longer one; discounted against an exact match.
SUBSET_FACTOR: Final = 0.95
# Limits of a watch-list file.
ENTRIES_MAX: Final = 200_000
CSV_BYTES_MAX: Final = 50 * 1024 * 1024
FIELD_LENGTH_MAX: Final = 200

COLUMNS: Final = ("name", "date_of_birth", "country", "list", "reference")
REQUIRED_COLUMNS: Final = ("name",)

# Words that say nothing about who someone is.
_NOISE_WORDS: Final = frozenset(
    {
        "mr", "mrs", "ms", "miss", "dr", "prof", "sir", "madam", "haji", "sheikh",
        "ltd", "limited", "llc", "inc", "incorporated", "corp", "corporation", "co",
        "plc", "gmbh", "ag", "sa", "sarl", "srl", "bv", "nv", "oy", "ab", "pty", "company",
    }
)  # fmt: skip
_NON_WORD = re.compile(r"[^a-z0-9 ]+")


class WatchListInvalid(InvalidInput):
    """A watch-list file that cannot be loaded; the message names file, line and column."""

    code = "WATCH_LIST_INVALID"


class DobMatch(StrEnum):
    EXACT = "exact"
    YEAR = "year"
    MISMATCH = "mismatch"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class ListEntry:
    """One name on a watch list. `birth_year` alone when the list gives only a year."""

    name: str
    date_of_birth: date | None = None
    birth_year: int | None = None
    country: str | None = None
    list_name: str = ""
    reference: str | None = None
    id: int = 0

    @property
    def year(self) -> int | None:
        return self.date_of_birth.year if self.date_of_birth is not None else self.birth_year

    @property
    def key(self) -> str:
        """Who this entry is across versions of its list: its reference, or its name and birth."""
        if self.reference:
            return f"ref:{self.reference}"
        return f"name:{normalise_name(self.name)}|{self.date_of_birth or self.birth_year or ''}"


@dataclass(frozen=True, slots=True)
class Subject:
    """Who is screened: a borrower's name and date of birth (None for a business)."""

    name: str
    date_of_birth: date | None = None


@dataclass(frozen=True, slots=True)
class Candidate:
    """A possible match with its scores (0 to 100)."""

    entry: ListEntry
    score: float
    name_score: float
    dob_match: DobMatch


def normalise_name(name: str) -> str:
    """ASCII, lower case, no punctuation, titles or company forms; words in order."""
    text = anyascii(name).lower().replace("'", "")
    words = _NON_WORD.sub(" ", text).split()
    kept = [w for w in words if w not in _NOISE_WORDS]
    return " ".join(kept or words)


def name_score(a: str, b: str) -> float:
    """How alike two normalised names are, 0 to 100, word order aside."""
    if not a or not b:
        return 0.0
    score = fuzz.token_sort_ratio(a, b, processor=None)
    if " " in a and " " in b:
        score = max(score, SUBSET_FACTOR * fuzz.token_set_ratio(a, b, processor=None))
    return float(score)


def dob_match(subject_dob: date | None, entry: ListEntry) -> DobMatch:
    year = entry.year
    if subject_dob is None or year is None:
        return DobMatch.UNKNOWN
    if entry.date_of_birth is not None and entry.date_of_birth == subject_dob:
        return DobMatch.EXACT
    if year == subject_dob.year:
        return DobMatch.YEAR
    return DobMatch.MISMATCH


def combined_score(name: float, dob: DobMatch) -> float:
    adjusted = {
        DobMatch.EXACT: name + DOB_EXACT_BONUS,
        DobMatch.YEAR: name + DOB_YEAR_BONUS,
        DobMatch.MISMATCH: name - DOB_MISMATCH_PENALTY,
        DobMatch.UNKNOWN: name,
    }[dob]
    return round(min(100.0, max(0.0, adjusted)), 2)


def score(subject: Subject, entry: ListEntry) -> Candidate:
    names = name_score(normalise_name(subject.name), normalise_name(entry.name))
    dob = dob_match(subject.date_of_birth, entry)
    return Candidate(entry, combined_score(names, dob), round(names, 2), dob)


@dataclass(frozen=True, slots=True)
class PreparedList:
    """Entries with their names normalised once, for screening many subjects."""

    entries: tuple[ListEntry, ...]
    names: tuple[str, ...]


def prepare(entries: Iterable[ListEntry]) -> PreparedList:
    kept = tuple(entries)
    return PreparedList(kept, tuple(normalise_name(e.name) for e in kept))


def screen(
    subject: Subject, lists: PreparedList, threshold: float = THRESHOLD_DEFAULT
) -> list[Candidate]:
    """The entries that score at or above `threshold` for `subject`, best first.

    rapidfuzz's process.extract picks the entries whose name could reach the
    threshold with the largest date-of-birth bonus (in C, over the whole list);
    only those are scored in full.
    """
    if not 0 <= threshold <= 100:
        raise InvalidInput("a screening threshold is between 0 and 100")
    query = normalise_name(subject.name)
    if not query or not lists.entries:
        return []
    cutoff = max(0.0, threshold - DOB_EXACT_BONUS)
    near: set[int] = set()
    for scorer in (fuzz.token_sort_ratio, fuzz.token_set_ratio):
        found = process.extract(
            query,
            lists.names,
            scorer=scorer,
            processor=None,
            score_cutoff=cutoff * SUBSET_FACTOR,
            limit=None,
        )
        near.update(index for _name, _score, index in found)
    hits = []
    for index in near:
        entry = lists.entries[index]
        names = name_score(query, lists.names[index])
        dob = dob_match(subject.date_of_birth, entry)
        total = combined_score(names, dob)
        if total >= threshold:
            hits.append(Candidate(entry, total, round(names, 2), dob))
    hits.sort(key=lambda c: (-c.score, -c.name_score, c.entry.list_name, c.entry.name, c.entry.id))
    return hits


# --- watch-list files --------------------------------------------------------------------


def _parse_birth(text: str, where: str) -> tuple[date | None, int | None]:
    if not text:
        return None, None
    if re.fullmatch(r"[0-9]{4}", text):
        year = int(text)
        if not 1850 <= year <= 2200:
            raise WatchListInvalid(f"{where}: year of birth {text} is not plausible")
        return None, year
    try:
        return date.fromisoformat(text), None
    except ValueError:
        raise WatchListInvalid(
            f"{where}: date_of_birth {text!r} is not YYYY-MM-DD or YYYY"
        ) from None


def parse_watch_list(text: str, source: str, default_list: str) -> list[ListEntry]:
    """Entries of a CSV file with a header row; columns name (required),
    date_of_birth (YYYY-MM-DD or YYYY), country, list, reference (optional).

    Any problem raises WatchListInvalid naming `source`, the line and the column;
    nothing is half-read.
    """
    if len(text) > CSV_BYTES_MAX:
        raise WatchListInvalid(f"{source}: a watch list has at most {CSV_BYTES_MAX} bytes")
    if "\x00" in text:
        raise WatchListInvalid(f"{source}: contains a NUL character: not a CSV text file")
    if not text.strip():
        raise WatchListInvalid(f"{source}: the file is empty: a header row with a name column")
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff"), newline=""))
    try:
        header = [h.strip().lower() for h in next(reader)]
    except (StopIteration, csv.Error) as exc:
        raise WatchListInvalid(f"{source}: no header row ({exc})") from None
    for column in REQUIRED_COLUMNS:
        if column not in header:
            raise WatchListInvalid(
                f"{source}: column {column!r} is missing from the header "
                f"(found: {', '.join(h for h in header if h) or 'nothing'})",
                column=column,
            )
    unknown = [h for h in header if h not in COLUMNS]
    if unknown:
        raise WatchListInvalid(
            f"{source}: unknown column {unknown[0]!r}: the columns are {', '.join(COLUMNS)}",
            column=unknown[0],
        )
    position = {name: header.index(name) for name in COLUMNS if name in header}
    entries: list[ListEntry] = []
    try:
        for row in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            where = f"{source} line {line}"
            if len(row) != len(header):
                raise WatchListInvalid(
                    f"{where}: {len(row)} fields where the header has {len(header)}"
                )
            cells = {name: " ".join(row[i].split()) for name, i in position.items()}
            for name, value in cells.items():
                if len(value) > FIELD_LENGTH_MAX:
                    raise WatchListInvalid(
                        f"{where}: column {name!r} has more than {FIELD_LENGTH_MAX} characters",
                        column=name,
                    )
            if not cells["name"] or not normalise_name(cells["name"]):
                raise WatchListInvalid(f"{where}: column 'name' is empty", column="name")
            born, year = _parse_birth(cells.get("date_of_birth", ""), where)
            entries.append(
                ListEntry(
                    name=cells["name"],
                    date_of_birth=born,
                    birth_year=year,
                    country=(cells.get("country") or "").upper() or None,
                    list_name=cells.get("list") or default_list,
                    reference=cells.get("reference") or None,
                )
            )
            if len(entries) > ENTRIES_MAX:
                raise WatchListInvalid(f"{source}: a watch list has at most {ENTRIES_MAX} entries")
    except csv.Error as exc:
        raise WatchListInvalid(f"{source} line {reader.line_num}: not valid CSV: {exc}") from None
    if not entries:
        raise WatchListInvalid(f"{source}: the file has a header and no entries")
    return entries


class WatchListFile:
    """A parsed watch-list file: the list's name, where it came from, its entries and
    their digest. Its text form, which is what the audit log records of it, is a
    summary: never thousands of names."""

    __slots__ = ("digest", "entries", "name", "source")

    def __init__(self, name: str, source: str, entries: Iterable[ListEntry]) -> None:
        self.name = name
        self.source = source
        self.entries = tuple(entries)
        content = "\n".join(
            "\t".join(
                (
                    e.name,
                    e.date_of_birth.isoformat() if e.date_of_birth else "",
                    str(e.birth_year or ""),
                    e.country or "",
                    e.list_name,
                    e.reference or "",
                )
            )
            for e in self.entries
        )
        self.digest = hashlib.sha256(content.encode()).hexdigest()

    def __str__(self) -> str:
        return (
            f"watch list {self.name} from {self.source}: {len(self.entries)} entries, "
            f"sha256 {self.digest[:16]}"
        )


def read_watch_list(text: str, source: str, name: str) -> WatchListFile:
    """Parse a watch-list CSV text (see parse_watch_list); rows without a `list`
    column value belong to the list `name`."""
    return WatchListFile(name, source, parse_watch_list(text, source, default_list=name))
