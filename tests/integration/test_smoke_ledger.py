from __future__ import annotations

from lendcore.ledger.model import AccountSpec, AccountType, EntrySpec, PostingSpec, Side
from lendcore.services import ledger
from lendcore.services.verify import verify_ledger
from lendcore.store.database import Database


def test_book_and_verify(db: Database) -> None:
    ledger.open_account(db, AccountSpec("1000", "Cash", AccountType.ASSET, "USD"))
    ledger.open_account(db, AccountSpec("3000", "Capital", AccountType.EQUITY, "USD"))
    entry = ledger.book_entry(
        db,
        EntrySpec(
            "k1",
            (
                PostingSpec("1000", Side.DEBIT, 500, "USD"),
                PostingSpec("3000", Side.CREDIT, 500, "USD"),
            ),
        ),
    )
    assert entry.id == 1
    assert ledger.account_balance(db, "1000").posted == 500
    assert verify_ledger(db).ok
