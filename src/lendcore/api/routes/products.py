"""Loan products: submit a change (maker-checker), read versions."""

from __future__ import annotations

import json
from datetime import date
from typing import Annotated, Any, Final, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from lendcore.api.deps import ActingDb, IdempotencyKey, fingerprint
from lendcore.api.problems import PROBLEM_JSON
from lendcore.api.routing import Route
from lendcore.api.schemas import ApprovalPublic
from lendcore.errors import InvalidInput, LendcoreError
from lendcore.presentation import product_doc, product_submission_doc, product_version_doc
from lendcore.products.model import InvalidProduct, Product, load_product_text, parse_product
from lendcore.services import products
from lendcore.services.idempotency import store_response, stored_response, validate_key

router = APIRouter(prefix="/v1", tags=["products"], route_class=Route)

# A product document is a page of settings; anything larger is not one.
BODY_BYTES_MAX: Final = 256 * 1024
VERSION_MAX: Final = 2_147_483_647
JSON_TYPES: Final = ("application/json",)
YAML_TYPES: Final = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")


class UnreadableBody(LendcoreError):
    code = "BODY_UNREADABLE"
    http_status = 400


class UnsupportedMediaType(LendcoreError):
    code = "UNSUPPORTED_MEDIA_TYPE"
    http_status = 415


class ProductVersionPublic(BaseModel):
    code: str
    version: int
    name: str
    currency: str
    amortization: str
    frequency: str
    interest_method: str
    digest: str
    loaded_by: str
    approved_by: str
    business_date: date
    created_at: str


class ProductPublic(ProductVersionPublic):
    definition: dict[str, Any] = Field(
        description="Every setting, as validated (amounts and rates as decimal strings)."
    )


class ProductSubmissionPublic(BaseModel):
    outcome: Literal["submitted", "already-pending", "unchanged"] = Field(
        description="submitted: a new approval awaits a second person; already-pending: an "
        "identical change awaits approval; unchanged: the latest version has these settings."
    )
    code: str
    digest: str
    changes: list[str] = Field(description='Settings that differ from the latest version ("all").')
    approval: ApprovalPublic | None
    current: ProductVersionPublic | None


class _Fingerprint(BaseModel):
    digest: str


REQUEST_BODY: Final[dict[str, Any]] = {
    "required": True,
    "description": "A product definition (see products/examples/): a JSON object, or the "
    "YAML file's text with Content-Type application/yaml.",
    "content": {
        "application/json": {"schema": {"type": "object"}},
        "application/yaml": {"schema": {"type": "string"}},
    },
}


async def product_body(request: Request, db: ActingDb) -> Product:
    """The product in the body, JSON or YAML (the caller is authenticated first)."""
    del db  # a dependency only so that a caller without credentials gets 401 first
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    raw = await request.body()
    if len(raw) > BODY_BYTES_MAX:
        raise InvalidProduct(f"a product document has at most {BODY_BYTES_MAX} bytes")
    try:
        body = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise UnreadableBody("the body is not UTF-8 text") from None
    if media in YAML_TYPES:
        return load_product_text(body)
    if media and media not in JSON_TYPES and not media.endswith("+json"):
        raise UnsupportedMediaType(
            f"send the product as application/json or application/yaml, not {media}"
        )
    try:
        document = json.loads(body)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"the body is not valid JSON: {exc.msg}") from None
    if not isinstance(document, dict):
        raise InvalidProduct("a product document is one object of settings")
    return parse_product(document)


@router.post(
    "/products",
    response_model=ProductSubmissionPublic,
    status_code=202,
    responses={
        200: {
            "model": ProductSubmissionPublic,
            "description": "Unchanged: the latest version has these settings; nothing submitted.",
        },
        415: {
            "description": "Unsupported media type (a problem document; match on `code`)",
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        },
    },
    openapi_extra={"requestBody": REQUEST_BODY},
)
def submit_product(
    request: Request,
    db: ActingDb,
    product: Annotated[Product, Depends(product_body)],
    key: IdempotencyKey = None,
) -> JSONResponse:
    """Submit a product change for a second person's approval (maker-checker); the
    approval stores it as the product's next version."""
    request_hash = fingerprint(
        request.method, request.url.path, _Fingerprint(digest=product.digest)
    )
    if key is not None:
        validate_key(key)
        stored = stored_response(db, key, request_hash)
        if stored is not None:
            return JSONResponse(
                stored.body,
                status_code=stored.status_code,
                headers={"Idempotent-Replayed": "true"},
            )
    submission = products.submit_product(db, product)
    status_code = 200 if submission.outcome == "unchanged" else 202
    document = ProductSubmissionPublic(**product_submission_doc(submission)).model_dump(mode="json")
    if key is not None:
        store_response(db, key, request_hash, status_code, document)
    return JSONResponse(document, status_code=status_code)


@router.get("/products", response_model=list[ProductVersionPublic])
def list_products(db: ActingDb) -> list[ProductVersionPublic]:
    """Every product at its latest version, by code."""
    return [ProductVersionPublic(**product_version_doc(p)) for p in products.list_products(db)]


@router.get("/products/{code}", response_model=ProductPublic)
def get_product(
    code: str,
    db: ActingDb,
    version: Annotated[
        int | None, Query(ge=1, le=VERSION_MAX, description="Default: the latest.")
    ] = None,
) -> ProductPublic:
    return ProductPublic(**product_doc(products.get_product(db, code, version)))


@router.get("/products/{code}/versions", response_model=list[ProductVersionPublic])
def product_versions(code: str, db: ActingDb) -> list[ProductVersionPublic]:
    """Every version of one product, oldest first."""
    return [
        ProductVersionPublic(**product_version_doc(p)) for p in products.product_versions(db, code)
    ]
