"""Loan products: loaded by one person, approved by another, stored as versions.

A product change is the maker-checker command "product.change": `submit_product`
stores it as pending with the settings that change against the latest version,
and a second person's approval stores it as the next version. Versions are never
updated or deleted (the database refuses it); a loan names the version it was
booked with and reads it with `product_on` inside its own transaction.

Loading a product whose settings equal the latest version's (same digest) makes
no approval and no version: the latest version is returned.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from threading import Lock
from typing import Any, Final, Literal

from sqlalchemy import Connection, func, insert, select
from sqlalchemy.exc import IntegrityError

from lendcore.errors import Conflict, LendcoreError, NotFound
from lendcore.products.model import InvalidProduct, Product, parse_product
from lendcore.services import approvals
from lendcore.services.approvals import PendingApproval
from lendcore.services.clock import current_business_date, utc_timestamp
from lendcore.services.commands import command, current_actor, note_result, query
from lendcore.services.events import emit
from lendcore.store.database import Database
from lendcore.store.schema import pending_approvals, products

PRODUCT_CHANGE: Final = "product.change"
PRODUCT_READ: Final = "product.read"

# Limits: pending product changes scanned for an identical one, products listed,
# settings named in a change summary, parsed versions kept in memory.
PENDING_SCAN_MAX: Final = 1_000
PRODUCTS_LIST_MAX: Final = 1_000
SUMMARY_CHANGES_MAX: Final = 8
PARSED_CACHE_MAX: Final = 512
VERSION_MAX: Final = 2_147_483_647  # the column is a 32-bit integer


class ProductNotFound(NotFound):
    code = "PRODUCT_NOT_FOUND"


class ProductChanged(Conflict):
    """The product got a new version after this change was submitted."""

    code = "PRODUCT_CHANGED_SINCE_SUBMITTED"


class ProductCorrupt(LendcoreError):
    """A stored version no longer matches its digest: altered behind lendcore's back."""

    code = "PRODUCT_CORRUPT"
    http_status = 500


@dataclass(frozen=True, slots=True)
class StoredProduct:
    """One stored version of a product, with who loaded and approved it."""

    product: Product
    version: int
    digest: str
    loaded_by: str
    approved_by: str
    business_date: date
    created_at: str

    @property
    def code(self) -> str:
        return self.product.code


@dataclass(frozen=True, slots=True)
class ProductSubmission:
    """What loading a product did.

    - "submitted": a new approval is pending (`approval`);
    - "already-pending": an identical change awaits approval already (`approval`);
    - "unchanged": the latest version has these very settings (`current`).
    """

    outcome: Literal["submitted", "already-pending", "unchanged"]
    code: str
    digest: str
    approval: PendingApproval | None = None
    current: StoredProduct | None = None
    # Settings that differ from the latest version ("all" for a new product).
    changes: tuple[str, ...] = ()


def canonical_definition(product: Product) -> str:
    """The stored form: canonical JSON of the validated settings."""
    return json.dumps(product.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))


def changed_settings(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> tuple[str, ...]:
    """Dotted names of the settings that differ between two product documents."""
    if old is None:
        return ("all",)
    found: list[str] = []

    def walk(a: Any, b: Any, path: str) -> None:
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            for key in sorted(set(a) | set(b)):
                walk(a.get(key), b.get(key), f"{path}.{key}" if path else str(key))
        elif a != b:
            found.append(path or "product")

    walk(old, new, "")
    return tuple(found)


# --- reading stored versions -----------------------------------------------------------

_parsed: OrderedDict[str, Product] = OrderedDict()
_parsed_lock = Lock()


def _parse_stored(definition_json: str, digest: str, code: str, version: int) -> Product:
    """The Product of a stored version, parsed once per process (versions never change,
    and a digest names one content, so the cache is keyed by digest)."""
    with _parsed_lock:
        found = _parsed.get(digest)
        if found is not None:
            _parsed.move_to_end(digest)
            return found
    try:
        product = parse_product(json.loads(definition_json))
    except (InvalidProduct, ValueError) as exc:
        raise ProductCorrupt(
            f"product {code} version {version} cannot be read back: {exc}",
            code=code,
            version=version,
        ) from None
    if product.digest != digest:
        raise ProductCorrupt(
            f"product {code} version {version} does not match its digest",
            code=code,
            version=version,
        )
    with _parsed_lock:
        _parsed[digest] = product
        while len(_parsed) > PARSED_CACHE_MAX:
            _parsed.popitem(last=False)
    return product


def _to_stored(row: Any) -> StoredProduct:
    return StoredProduct(
        product=_parse_stored(row.definition_json, row.digest, row.code, row.version),
        version=row.version,
        digest=row.digest,
        loaded_by=row.loaded_by,
        approved_by=row.approved_by,
        business_date=row.business_date,
        created_at=row.created_at,
    )


def _latest_row(conn: Connection, code: str) -> Any:
    return conn.execute(
        select(products).where(products.c.code == code).order_by(products.c.version.desc()).limit(1)
    ).first()


def product_on(conn: Connection, code: str, version: int | None = None) -> StoredProduct:
    """A stored version (the latest when `version` is None), read in the caller's
    transaction. For other services (servicing books a loan against it); no
    permission check of its own."""
    if version is None:
        row = _latest_row(conn, code)
    elif not 1 <= version <= VERSION_MAX:
        row = None  # no such version (and no integer overflow in the database)
    else:
        row = conn.execute(
            select(products).where(products.c.code == code, products.c.version == version)
        ).first()
    if row is None:
        which = "" if version is None else f" version {version}"
        raise ProductNotFound(f"no product {code}{which}", code=code, version=version)
    return _to_stored(row)


# --- the maker's step ------------------------------------------------------------------


def _identical_pending(conn: Connection, code: str, digest: str) -> int | None:
    """The id of a pending change of `code` to exactly these settings, if any."""
    rows = conn.execute(
        select(pending_approvals.c.id, pending_approvals.c.payload_json)
        .where(
            pending_approvals.c.command == PRODUCT_CHANGE,
            pending_approvals.c.status == "pending",
        )
        .order_by(pending_approvals.c.id)
        .limit(PENDING_SCAN_MAX)
    )
    for row in rows:
        payload = json.loads(row.payload_json)
        if payload.get("code") == code and payload.get("digest") == digest:
            return int(row.id)
    return None


def _summary(product: Product, base_version: int, changes: tuple[str, ...]) -> str:
    if base_version == 0:
        return f"New product {product.code} ({product.name}, {product.currency})"
    named = ", ".join(changes[:SUMMARY_CHANGES_MAX])
    more = len(changes) - SUMMARY_CHANGES_MAX
    if more > 0:
        named += f" and {more} more"
    return f"Product {product.code} version {base_version + 1}: changes {named}"


@command(PRODUCT_CHANGE)
def submit_product(db: Database, product: Product) -> ProductSubmission:
    """The maker's step: validated now, stored as a new version when a second
    person approves it (nothing happens when the settings are unchanged)."""
    if not isinstance(product, Product):
        raise InvalidProduct("a product change needs a validated Product")
    definition: dict[str, Any] = product.model_dump(mode="json")
    digest = product.digest
    with db.transaction() as conn:
        latest = _latest_row(conn, product.code)
        if latest is not None and latest.digest == digest:
            current = _to_stored(latest)
            note_result(code=product.code, outcome="unchanged", version=current.version)
            return ProductSubmission("unchanged", product.code, digest, current=current)
        base_version = 0 if latest is None else int(latest.version)
        old = None if latest is None else json.loads(latest.definition_json)
        changes = changed_settings(old, definition)
        waiting = _identical_pending(conn, product.code, digest)
        if waiting is None:
            payload = {
                "code": product.code,
                "digest": digest,
                "base_version": base_version,
                "loaded_by": db.actor.label,
                "changes": list(changes),
                "definition": definition,
            }
            pending = approvals.submit(
                conn, db, PRODUCT_CHANGE, payload, _summary(product, base_version, changes)
            )
            note_result(code=product.code, outcome="submitted")
            return ProductSubmission(
                "submitted", product.code, digest, approval=pending, changes=changes
            )
        note_result(code=product.code, outcome="already-pending", approval_id=waiting)
    # Read after commit, as the maker (who may read approvals): the same change
    # loaded twice waits for one approval, not two.
    return ProductSubmission(
        "already-pending",
        product.code,
        digest,
        approval=approvals.get_approval(db, waiting),
        changes=changes,
    )


@approvals.executes(PRODUCT_CHANGE)
def _store_approved_version(conn: Connection, payload: Mapping[str, Any]) -> Mapping[str, Any]:
    """The checker approved: store the next version (in the approval's transaction)."""
    product = parse_product(payload["definition"])
    digest = product.digest
    if digest != payload["digest"] or product.code != payload["code"]:
        raise InvalidProduct("the stored product change does not match its digest")
    latest = _latest_row(conn, product.code)
    if latest is not None and latest.digest == digest:
        # Someone stored these very settings meanwhile: no second version.
        return {"code": product.code, "version": int(latest.version), "created": False}
    latest_version = 0 if latest is None else int(latest.version)
    if latest_version != int(payload["base_version"]):
        # The checker reviewed the change against an older version; applying it
        # now would silently undo what was approved since. Reject and resubmit.
        raise ProductChanged(
            f"product {product.code} is at version {latest_version} now, not "
            f"{payload['base_version']} as when this change was submitted: reject it and "
            "load the product again",
            code=product.code,
        )
    version = latest_version + 1
    actor = current_actor()
    try:
        conn.execute(
            insert(products).values(
                code=product.code,
                version=version,
                name=product.name,
                currency=product.currency,
                definition_json=canonical_definition(product),
                digest=digest,
                loaded_by=str(payload["loaded_by"]),
                approved_by="system" if actor is None else actor.label,
                business_date=current_business_date(conn),
                created_at=utc_timestamp(),
            )
        )
    except IntegrityError:
        # Two approvals of the same product at once: the other stored this version.
        raise ProductChanged(
            f"product {product.code} got version {version} from another approval at the "
            "same time: reject this one and load the product again",
            code=product.code,
        ) from None
    emit(
        conn,
        "product.version_created",
        "product",
        product.code,
        {"code": product.code, "version": version, "digest": digest, "name": product.name},
    )
    return {"code": product.code, "version": version, "created": True}


# --- queries -------------------------------------------------------------------------------


@query(PRODUCT_READ)
def get_product(db: Database, code: str, version: int | None = None) -> StoredProduct:
    """A product's latest version, or the version asked for."""
    with db.reading() as conn:
        return product_on(conn, code, version)


@query(PRODUCT_READ)
def list_products(db: Database) -> list[StoredProduct]:
    """The latest version of every product, by code."""
    latest = (
        select(products.c.code, func.max(products.c.version).label("version"))
        .group_by(products.c.code)
        .subquery()
    )
    q = (
        select(products)
        .join(
            latest,
            (products.c.code == latest.c.code) & (products.c.version == latest.c.version),
        )
        .order_by(products.c.code)
        .limit(PRODUCTS_LIST_MAX)
    )
    with db.reading() as conn:
        return [_to_stored(row) for row in conn.execute(q)]


@query(PRODUCT_READ)
def product_versions(db: Database, code: str) -> list[StoredProduct]:
    """Every version of a product, oldest first."""
    with db.reading() as conn:
        rows = conn.execute(
            select(products).where(products.c.code == code).order_by(products.c.version)
        ).all()
    if not rows:
        raise ProductNotFound(f"no product {code}", code=code)
    return [_to_stored(row) for row in rows]
