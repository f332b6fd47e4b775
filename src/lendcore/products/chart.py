"""The ledger accounts a product books to, as account specs a person can open."""

from __future__ import annotations

from lendcore.ledger.model import AccountSpec, AccountType, BalanceConstraint, NormalSide
from lendcore.products.model import Product

# role -> (account type, name, constraint)
_ROLES: dict[str, tuple[AccountType, str, BalanceConstraint]] = {
    "fund_source": (AccountType.ASSET, "Cash at bank", BalanceConstraint.NON_NEGATIVE),
    "principal": (AccountType.ASSET, "Loans receivable: principal", BalanceConstraint.NON_NEGATIVE),
    "interest_receivable": (
        AccountType.ASSET,
        "Interest receivable",
        BalanceConstraint.NON_NEGATIVE,
    ),
    "fee_receivable": (
        AccountType.ASSET,
        "Fees and penalties receivable",
        BalanceConstraint.NON_NEGATIVE,
    ),
    "overpayment": (
        AccountType.LIABILITY,
        "Overpayments and suspense",
        BalanceConstraint.NON_NEGATIVE,
    ),
    "interest_income": (AccountType.INCOME, "Interest income", BalanceConstraint.NONE),
    "fee_income": (AccountType.INCOME, "Fee income", BalanceConstraint.NONE),
    "penalty_income": (AccountType.INCOME, "Penalty income", BalanceConstraint.NONE),
    "recovery_income": (
        AccountType.INCOME,
        "Recoveries of written-off loans",
        BalanceConstraint.NONE,
    ),
    "write_off_expense": (AccountType.EXPENSE, "Loan write-offs", BalanceConstraint.NONE),
    "impairment_expense": (
        AccountType.EXPENSE,
        "Impairment losses on loans (ECL)",
        BalanceConstraint.NONE,
    ),
    # A contra-asset: credit balance, never debit.
    "loss_allowance": (
        AccountType.ASSET,
        "Loss allowance (expected credit loss)",
        BalanceConstraint.NON_NEGATIVE,
    ),
}
_CREDIT_NORMAL = frozenset({"loss_allowance"})


def chart_for(product: Product) -> list[AccountSpec]:
    """One spec per distinct account of the product's accounting mapping."""
    specs: dict[str, AccountSpec] = {}
    for role, code in product.accounting.model_dump().items():
        if code is None:
            continue
        kind, name, constraint = _ROLES[role]
        if code not in specs:
            specs[code] = AccountSpec(
                code,
                name,
                kind,
                product.currency,
                normal_side=NormalSide.CREDIT if role in _CREDIT_NORMAL else None,
                balance_constraint=constraint,
            )
    return list(specs.values())
