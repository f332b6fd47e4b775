"""Watch-list matching and watch-list files (pure)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from lendcore.errors import InvalidInput
from lendcore.origination.screening import (
    THRESHOLD_DEFAULT,
    DobMatch,
    ListEntry,
    Subject,
    WatchListInvalid,
    normalise_name,
    prepare,
    read_watch_list,
    score,
    screen,
)

DEMO = (
    Path(__file__).parents[2] / "src" / "lendcore" / "origination" / "data" / "watchlist_demo.csv"
)
IVAN = ListEntry("Ivan Petrov", date(1970, 5, 14), list_name="L", reference="R1", id=1)


def test_normalise_transliterates_and_drops_noise() -> None:
    assert normalise_name("  Dr. Élodie   O'Brien-Exemplaire ") == "elodie obrien exemplaire"
    assert normalise_name("Борис Вымышленный") == "boris vymyshlennyy"
    assert normalise_name("Shellco Fictitious Trading Ltd.") == "shellco fictitious trading"
    # A name made only of noise words keeps them rather than vanish.
    assert normalise_name("Company Ltd") == "company ltd"


def test_exact_name_and_birth_date_scores_full() -> None:
    found = score(Subject("Ivan Petrov", date(1970, 5, 14)), IVAN)
    assert (found.score, found.name_score, found.dob_match) == (100.0, 100.0, DobMatch.EXACT)


def test_transposed_names_match() -> None:
    found = score(Subject("PETROV, Ivan", date(1970, 5, 14)), IVAN)
    assert found.name_score == 100.0
    assert found.score >= THRESHOLD_DEFAULT


def test_accents_and_scripts_do_not_hide_a_name() -> None:
    entry = ListEntry("Élodie Exemplaire", date(1985, 11, 2))
    assert score(Subject("Elodie Exemplaire", date(1985, 11, 2)), entry).score == 100.0
    cyrillic = ListEntry("Борис Вымышленный", birth_year=1962)
    found = score(Subject("Boris Vymyshlenny", date(1962, 1, 2)), cyrillic)
    assert found.dob_match is DobMatch.YEAR
    assert found.score >= THRESHOLD_DEFAULT


def test_a_missing_middle_name_still_matches() -> None:
    entry = ListEntry("Juan Carlos Inventado Ruiz", birth_year=1981)
    assert score(Subject("Juan Inventado Ruiz", date(1981, 6, 1)), entry).score >= THRESHOLD_DEFAULT


def test_a_different_year_of_birth_falls_below_the_threshold() -> None:
    found = score(Subject("Ivan Petrov", date(1990, 1, 1)), IVAN)
    assert found.name_score == 100.0
    assert found.dob_match is DobMatch.MISMATCH
    assert found.score < THRESHOLD_DEFAULT


def test_a_different_name_is_no_hit() -> None:
    assert score(Subject("Maria Gonzalez", date(1970, 5, 14)), IVAN).score < THRESHOLD_DEFAULT


def test_screen_returns_hits_best_first_and_only_above_the_threshold() -> None:
    lists = prepare(
        [
            IVAN,
            ListEntry("Ivan Petrova", date(1970, 5, 14), list_name="L", id=2),
            ListEntry("Someone Else", date(1970, 5, 14), list_name="L", id=3),
        ]
    )
    hits = screen(Subject("Ivan Petrov", date(1970, 5, 14)), lists)
    assert [h.entry.id for h in hits] == [1, 2]
    assert hits[0].name_score > hits[1].name_score
    assert screen(Subject("Ivan Petrov", date(1990, 1, 1)), lists) == []
    assert screen(Subject("", None), lists) == []
    with pytest.raises(InvalidInput):
        screen(Subject("Ivan"), lists, threshold=101)


def test_screen_agrees_with_score_on_the_demo_list() -> None:
    """The C prefilter never drops an entry the full score would keep."""
    entries = read_watch_list(DEMO.read_text(), "demo", "demo").entries
    lists = prepare(entries)
    for subject in (
        Subject("Dmitri Fictionov", date(1970, 5, 14)),
        Subject("Fictionov Dmitry", date(1970, 1, 1)),
        Subject("Nadia Notreal", None),
        Subject("Shellco Fictitious Trading Limited", None),
        Subject("Ilias Fantastikos", date(1958, 3, 21)),
    ):
        expected = sorted(e.name for e in entries if score(subject, e).score >= THRESHOLD_DEFAULT)
        assert sorted(h.entry.name for h in screen(subject, lists)) == expected
        assert expected, subject


# --- files ---------------------------------------------------------------------------------


def test_the_demo_list_reads_with_years_dates_and_lists() -> None:
    parsed = read_watch_list(DEMO.read_text(), "watchlist_demo.csv", "demo")
    assert len(parsed.entries) == 10
    boris = next(e for e in parsed.entries if e.reference == "SYN-0003")
    assert (boris.birth_year, boris.date_of_birth, boris.list_name) == (
        1962,
        None,
        "SYNTHETIC-SANCTIONS",
    )
    assert all(e.reference and e.reference.startswith("SYN-") for e in parsed.entries)
    assert "10 entries" in str(parsed) and "Fictionov" not in str(parsed)
    again = read_watch_list(DEMO.read_text(), "elsewhere.csv", "demo")
    assert again.digest == parsed.digest


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "f.csv: the file is empty"),
        ("   \n", "f.csv: the file is empty"),
        ("full_name,country\nX,YY\n", "f.csv: column 'name' is missing"),
        ("name,colour\nX,red\n", "f.csv: unknown column 'colour'"),
        ("name,country\n", "f.csv: the file has a header and no entries"),
        ("name,country\nA,XX\n,XX\n", "f.csv line 3: column 'name' is empty"),
        ("name,date_of_birth\nA,1970-13-01\n", "f.csv line 2: date_of_birth '1970-13-01'"),
        ("name,date_of_birth\nA,1492\n", "f.csv line 2: year of birth 1492"),
        ("name,country\nA,XX,extra\n", "f.csv line 2: 3 fields where the header has 2"),
        ("name\nA\x00B\n", "f.csv: contains a NUL character"),
    ],
)
def test_bad_files_are_refused_naming_file_line_and_column(text: str, message: str) -> None:
    with pytest.raises(WatchListInvalid) as refused:
        read_watch_list(text, "f.csv", "demo")
    assert refused.value.code == "WATCH_LIST_INVALID"
    assert message in refused.value.message


def test_a_list_column_is_optional_and_rows_default_to_the_list_name() -> None:
    parsed = read_watch_list("\ufeffName , Date_of_Birth\nA B,1970\n\n", "f.csv", "mine")
    assert [(e.name, e.birth_year, e.list_name) for e in parsed.entries] == [("A B", 1970, "mine")]
