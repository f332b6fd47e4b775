"""A lender ready to lend on a real database: accounts, a funded bank account,
an approved product, policy and scorecard, and staff for each step. Loans are
booked the only way there is: borrower, KYC, application, decision, booking."""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import count
from pathlib import Path

from lendcore.products.model import Product, load_product_text
from lendcore.services import ledger, lender
from lendcore.services.lender import Staff
from lendcore.services.loans import LoanView
from lendcore.store.database import Database

EXAMPLES = Path(__file__).resolve().parents[2] / "src" / "lendcore" / "products" / "examples"
FUNDING_MINOR = 10_000_000_000


def example(name: str) -> Product:
    return load_product_text((EXAMPLES / f"{name}.yaml").read_text())


@dataclass(frozen=True)
class Lender:
    operator: Database
    staff: Staff
    product: Product
    _names: count[int] = field(default_factory=lambda: count(1))

    @property
    def servicing(self) -> Database:
        return self.staff.servicing

    @property
    def approver(self) -> Database:
        return self.staff.approver

    def book(self, amount: str | int, term: int, **application: object) -> LoanView:
        """A loan for a new, verified borrower, through application and decision."""
        borrower = lender.onboard(
            self.staff, f"Borrower {next(self._names)}", self.product.currency
        )
        return lender.originate(self.staff, borrower, self.product, amount, term, **application)  # type: ignore[arg-type]


def open_lender(db: Database, product: Product | None = None, *, prefix: str = "") -> Lender:
    product = product or example("consumer-annuity")
    staff = lender.set_up_lender(db, [product], {product.currency: FUNDING_MINOR}, prefix=prefix)
    return Lender(db, staff, product)


def ledger_positions(db: Database, product: Product) -> dict[str, int]:
    """Each accounting role's ledger balance (normal side) for the book of this
    product; the bank account without the lender's capital."""
    from lendcore.servicing.replay import ROLES_CREDIT, ROLES_DEBIT

    result = {}
    for role, code in product.accounting.model_dump().items():
        if role not in (*ROLES_DEBIT, *ROLES_CREDIT):
            continue  # provisioning accounts: end of day's, not the loan's position
        result[role] = ledger.account_balance(db, code).posted
    result["fund_source"] -= FUNDING_MINOR
    return result
