"""Product versions on real databases (SQLite, and PostgreSQL when configured):
loaded by one person, stored as a version when another approves; unchanged
settings make no version; a change makes the next version and leaves the old
one as it was; the maker never approves; a bad product writes nothing; stored
versions cannot be changed behind lendcore's back."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from lendcore.auth.permissions import PermissionDenied
from lendcore.products.model import InvalidProduct, Product, load_product_text, parse_product
from lendcore.services import approvals, audit, events, identity
from lendcore.services import products as product_service
from lendcore.services.approvals import MakerCannotApprove
from lendcore.services.products import (
    ProductChanged,
    ProductNotFound,
    StoredProduct,
    product_on,
    submit_product,
)
from lendcore.store.database import Database
from tests.integration.audit_helpers import audit_after, audit_head, table_contents

EXAMPLES = Path(__file__).parents[2] / "src" / "lendcore" / "products" / "examples"


def example_document(name: str = "consumer-annuity") -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((EXAMPLES / f"{name}.yaml").read_text())
    return document


def example(name: str = "consumer-annuity") -> Product:
    return load_product_text((EXAMPLES / f"{name}.yaml").read_text())


def with_rate(default: str) -> Product:
    document = copy.deepcopy(example_document())
    document["interest"]["rate"]["default"] = default
    return parse_product(document)


@dataclass(frozen=True)
class Desk:
    maker: Database
    checker: Database
    admin: Database
    officer: Database


@pytest.fixture
def desk(db: Database) -> Desk:
    identity.create_user(db, "rita", ["risk_manager"])
    identity.create_user(db, "rob", ["risk_manager"])
    identity.create_user(db, "adam", ["admin"])
    identity.create_user(db, "lou", ["loan_officer"])
    return Desk(
        maker=db.acting_as(identity.actor_for_username(db, "rita")),
        checker=db.acting_as(identity.actor_for_username(db, "rob")),
        admin=db.acting_as(identity.actor_for_username(db, "adam")),
        officer=db.acting_as(identity.actor_for_username(db, "lou")),
    )


def load_and_approve(desk: Desk, product: Product) -> StoredProduct:
    submission = submit_product(desk.maker, product)
    assert submission.outcome == "submitted"
    assert submission.approval is not None
    approvals.approve(desk.checker, submission.approval.id, "looks right")
    return product_service.get_product(desk.officer, product.code)


def test_load_then_approval_by_another_user_makes_version_1(db: Database, desk: Desk) -> None:
    product = example()
    submission = submit_product(desk.maker, product)
    assert (submission.outcome, submission.changes) == ("submitted", ("all",))
    pending = submission.approval
    assert pending is not None
    assert (pending.command, pending.status, pending.maker) == ("product.change", "pending", "rita")
    assert pending.summary.startswith("New product consumer-annuity")
    assert pending.payload["digest"] == product.digest
    # Nothing is stored before the approval.
    with pytest.raises(ProductNotFound):
        product_service.get_product(desk.officer, product.code)
    assert product_service.list_products(desk.officer) == []

    decided = approvals.approve(desk.checker, pending.id)
    assert decided.status == "executed"
    assert decided.result == {"code": "consumer-annuity", "version": 1, "created": True}

    stored = product_service.get_product(desk.officer, "consumer-annuity")
    assert stored.version == 1
    assert stored.product == product
    assert stored.digest == product.digest
    assert (stored.loaded_by, stored.approved_by) == ("rita", "rob")
    assert [p.code for p in product_service.list_products(desk.officer)] == ["consumer-annuity"]
    # The event and the audit trail name the version.
    created = events.list_events(db, event_type="product.version_created")
    assert [(e.aggregate_id, e.payload["version"]) for e in created] == [("consumer-annuity", 1)]
    changes = audit.list_audit(db, command_name="product.change", outcome="ok")
    assert [e.actor for e in changes] == ["rita"]


def test_the_same_settings_again_make_no_new_version(desk: Desk) -> None:
    first = load_and_approve(desk, example())
    again = submit_product(desk.maker, example())
    assert again.outcome == "unchanged"
    assert again.approval is None
    assert again.current == first
    assert approvals.list_approvals(desk.maker, status="pending") == []
    assert [v.version for v in product_service.product_versions(desk.officer, first.code)] == [1]


def test_changed_settings_make_version_2_and_leave_version_1(db: Database, desk: Desk) -> None:
    v1 = load_and_approve(desk, example())
    with db.reading() as conn:
        row_v1 = conn.execute(text("SELECT * FROM products WHERE version = 1")).one()
    submission = submit_product(desk.maker, with_rate("0.1399"))
    assert submission.changes == ("interest.rate.default",)
    assert submission.approval is not None
    assert "version 2" in submission.approval.summary
    assert "interest.rate.default" in submission.approval.summary
    approvals.approve(desk.checker, submission.approval.id)

    latest = product_service.get_product(desk.officer, v1.code)
    assert latest.version == 2
    assert str(latest.product.interest.rate.default) == "0.1399"
    assert product_service.get_product(desk.officer, v1.code, 1) == v1
    assert [v.version for v in product_service.product_versions(desk.officer, v1.code)] == [1, 2]
    assert [(p.code, p.version) for p in product_service.list_products(desk.officer)] == [
        (v1.code, 2)
    ]
    with db.reading() as conn:
        assert conn.execute(text("SELECT * FROM products WHERE version = 1")).one() == row_v1
        # Servicing reads a loan's own version inside its transaction.
        assert product_on(conn, v1.code, 1).product.interest.rate.default == (
            v1.product.interest.rate.default
        )
        assert product_on(conn, v1.code).version == 2
    # Going back to the first settings is a change too: version 3, same digest as 1.
    v3 = load_and_approve(desk, example())
    assert (v3.version, v3.digest) == (3, v1.digest)


def test_the_maker_cannot_approve(desk: Desk) -> None:
    submission = submit_product(desk.maker, example())
    assert submission.approval is not None
    with pytest.raises(MakerCannotApprove):
        approvals.approve(desk.maker, submission.approval.id)
    # Nor may someone without an approving role: an admin may load a product
    # (configuration) but never approve one.
    for other in (desk.officer, desk.admin):
        with pytest.raises(PermissionDenied):
            approvals.approve(other, submission.approval.id)
    assert approvals.get_approval(desk.maker, submission.approval.id).status == "pending"
    with pytest.raises(ProductNotFound):
        product_service.get_product(desk.officer, "consumer-annuity")


def test_a_loan_officer_cannot_load_a_product(db: Database, desk: Desk) -> None:
    before = table_contents(db)
    with pytest.raises(PermissionDenied):
        submit_product(desk.officer, example())
    assert table_contents(db) == before


def test_a_bad_product_writes_nothing(db: Database, desk: Desk) -> None:
    document = example_document()
    document["schedule"]["calendar"] = "Atlantis"
    before = table_contents(db)
    head, _ = audit_head(db)
    with pytest.raises(InvalidProduct) as caught:
        submit_product(desk.maker, parse_product(document))
    assert caught.value.details["field"] == "schedule.calendar"
    # Refused before the service: nothing written, not even an audit record.
    assert table_contents(db) == before
    assert audit_after(db, head) == []
    # A non-product handed to the service is refused and recorded as failed.
    with pytest.raises(InvalidProduct):
        submit_product(desk.maker, document)  # type: ignore[arg-type]
    assert table_contents(db) == before
    assert [(r.command, r.outcome) for r in audit_after(db, head)] == [("product.change", "failed")]


def test_loading_the_same_change_twice_waits_for_one_approval(desk: Desk) -> None:
    first = submit_product(desk.maker, example())
    second = submit_product(desk.admin, example())
    assert second.outcome == "already-pending"
    assert first.approval is not None and second.approval is not None
    assert second.approval.id == first.approval.id
    assert len(approvals.list_approvals(desk.maker, status="pending")) == 1


def test_a_change_approved_after_another_is_refused(desk: Desk) -> None:
    load_and_approve(desk, example())
    one = submit_product(desk.maker, with_rate("0.14"))
    other = submit_product(desk.maker, with_rate("0.15"))
    assert one.approval is not None and other.approval is not None
    approvals.approve(desk.checker, one.approval.id)
    with pytest.raises(ProductChanged):
        approvals.approve(desk.checker, other.approval.id)
    # The stale change stays pending (to be rejected); version 2 is the first change.
    assert approvals.get_approval(desk.maker, other.approval.id).status == "pending"
    latest = product_service.get_product(desk.officer, "consumer-annuity")
    assert (latest.version, str(latest.product.interest.rate.default)) == (2, "0.14")


def test_unknown_products_and_versions(desk: Desk) -> None:
    load_and_approve(desk, example())
    with pytest.raises(ProductNotFound):
        product_service.get_product(desk.officer, "no-such-product")
    with pytest.raises(ProductNotFound):
        product_service.get_product(desk.officer, "consumer-annuity", 2)
    with pytest.raises(ProductNotFound):
        product_service.product_versions(desk.officer, "no-such-product")


def test_every_example_is_stored_and_read_back(desk: Desk) -> None:
    names = sorted(p.stem for p in EXAMPLES.glob("*.yaml"))
    for name in names:
        stored = load_and_approve(desk, example(name))
        assert stored.product == example(name)
    assert [p.code for p in product_service.list_products(desk.officer)] == names


def test_the_database_refuses_changing_a_version(db: Database, desk: Desk) -> None:
    load_and_approve(desk, example())
    before = table_contents(db)
    for statement in (
        "UPDATE products SET definition_json = '{}' WHERE version = 1",
        "DELETE FROM products WHERE version = 1",
    ):
        with pytest.raises(DBAPIError) as caught, db.transaction() as conn:
            conn.execute(text(statement))
        assert "products is append-only" in str(caught.value.orig)
    assert table_contents(db) == before
