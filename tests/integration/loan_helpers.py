"""A lender ready to lend on a real database: accounts, a funded bank account,
an approved product and users for each step."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lendcore.ledger.model import AccountSpec, AccountType, EntrySpec, PostingSpec, Side
from lendcore.products.chart import chart_for
from lendcore.products.model import Product, load_product_text
from lendcore.services import approvals, identity, ledger, products
from lendcore.store.database import Database

EXAMPLES = Path(__file__).resolve().parents[2] / "src" / "lendcore" / "products" / "examples"


def example(name: str) -> Product:
    return load_product_text((EXAMPLES / f"{name}.yaml").read_text())


FUNDING_MINOR = 10_000_000_000


@dataclass(frozen=True)
class Lender:
    operator: Database
    servicing: Database
    approver: Database
    product: Product


def open_lender(
    db: Database,
    product: Product | None = None,
    *,
    funding_minor: int = FUNDING_MINOR,
) -> Lender:
    product = product or example("consumer-annuity")
    for spec in chart_for(product):
        ledger.open_account(db, spec)
    ledger.open_account(
        db, AccountSpec(f"3000-{product.currency}", "Equity", AccountType.EQUITY, product.currency)
    )
    ledger.book_entry(
        db,
        EntrySpec(
            f"fund-{product.code}",
            (
                PostingSpec(
                    product.accounting.fund_source, Side.DEBIT, funding_minor, product.currency
                ),
                PostingSpec(
                    f"3000-{product.currency}", Side.CREDIT, funding_minor, product.currency
                ),
            ),
            description="Capital",
        ),
    )
    risk = db.acting_as(identity.create_user(db, f"risk-{product.code}", ["risk_manager"]).actor())
    risk2 = db.acting_as(
        identity.create_user(db, f"risk2-{product.code}", ["risk_manager"]).actor()
    )
    submission = products.submit_product(risk, product)
    assert submission.approval is not None
    approvals.approve(risk2, submission.approval.id)
    servicing = db.acting_as(identity.create_user(db, f"svc-{product.code}", ["servicing"]).actor())
    approver = db.acting_as(
        identity.create_user(db, f"appr-{product.code}", ["credit_approver"]).actor()
    )
    return Lender(db, servicing, approver, product)


def ledger_positions(db: Database, product: Product) -> dict[str, int]:
    """Each accounting role's ledger balance (normal side) for a book of one
    loan; the bank account without the lender's capital."""
    result = {}
    for role, code in product.accounting.model_dump().items():
        result[role] = ledger.account_balance(db, code).posted
    result["fund_source"] -= FUNDING_MINOR
    return result
