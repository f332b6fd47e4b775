"""`lendcore product load|list|show|versions`: loan products from the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from lendcore.cli.common import JsonOption, console, db, handles_errors, print_json
from lendcore.presentation import (
    product_doc,
    product_submission_doc,
    product_version_doc,
)
from lendcore.products.model import InvalidProduct, load_product_text
from lendcore.services import products as product_service
from lendcore.services.products import StoredProduct

product_app = typer.Typer(
    help="Loan products: load (maker-checker), list, show.", no_args_is_help=True
)

# A product file is a page of settings; anything this large is not one.
PRODUCT_FILE_BYTES_MAX = 256 * 1024


def read_product_file(path: Path) -> str:
    try:
        size = path.stat().st_size
        if size > PRODUCT_FILE_BYTES_MAX:
            raise InvalidProduct(
                f"{path} is {size} bytes: a product file has at most {PRODUCT_FILE_BYTES_MAX}"
            )
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidProduct(f"cannot read {path}: {exc}") from None


def flatten(value: Any, prefix: str = "") -> list[tuple[str, str]]:
    """(dotted setting, text) pairs of a product document, in document order."""
    if isinstance(value, dict):
        rows: list[tuple[str, str]] = []
        for key, item in value.items():
            rows += flatten(item, f"{prefix}.{key}" if prefix else str(key))
        return rows
    if isinstance(value, list):
        if all(not isinstance(v, dict | list) for v in value):
            return [(prefix, ", ".join("null" if v is None else str(v) for v in value))]
        return [(prefix, str(value).replace("None", "null"))]
    return [(prefix, "null" if value is None else str(value))]


def print_versions(found: list[StoredProduct], title: str) -> None:
    table = Table(title=title)
    table.add_column("Code", no_wrap=True)
    for column in ("Ver", "Name", "Cur", "Amortization", "Frequency", "Approved"):
        table.add_column(column)
    for p in found:
        table.add_row(
            p.code,
            str(p.version),
            p.product.name,
            p.product.currency,
            p.product.amortization.value,
            p.product.frequency,
            f"{p.approved_by} {p.business_date.isoformat()}",
        )
    console.print(table)


@product_app.command("load")
@handles_errors
def product_load(
    ctx: typer.Context,
    file: Path = typer.Argument(..., help="A product YAML file (see products/examples/)."),
    json_out: bool = JsonOption,
) -> None:
    """Validate a product file and submit it for approval; a second person's approval
    stores it as the product's next version. Unchanged settings submit nothing."""
    product = load_product_text(read_product_file(file))
    submission = product_service.submit_product(db(ctx), product)
    if json_out:
        print_json(product_submission_doc(submission))
        return
    if submission.outcome == "unchanged":
        assert submission.current is not None
        console.print(
            f"Product {submission.code} is unchanged: version {submission.current.version} "
            "has these settings already; nothing submitted"
        )
        return
    assert submission.approval is not None
    pending = submission.approval
    already = "already waits" if submission.outcome == "already-pending" else "submitted"
    console.print(
        f"Product {submission.code} {already} as approval {pending.id} ({pending.status}): "
        f"{pending.summary}; another risk manager approves it with "
        f"`lendcore approval approve {pending.id}`",
        highlight=False,
    )


@product_app.command("list")
@handles_errors
def product_list(ctx: typer.Context, json_out: bool = JsonOption) -> None:
    """List every product at its latest version."""
    found = product_service.list_products(db(ctx))
    if json_out:
        print_json({"products": [product_version_doc(p) for p in found]})
        return
    print_versions(found, "Products (latest versions)")


@product_app.command("versions")
@handles_errors
def product_versions(ctx: typer.Context, code: str, json_out: bool = JsonOption) -> None:
    """List every version of one product, oldest first."""
    found = product_service.product_versions(db(ctx), code)
    if json_out:
        print_json({"code": code, "versions": [product_version_doc(p) for p in found]})
        return
    print_versions(found, f"Versions of {code}")


@product_app.command("show")
@handles_errors
def product_show(
    ctx: typer.Context,
    code: str,
    version: int | None = typer.Option(None, "--version", min=1, help="Default: the latest."),
    json_out: bool = JsonOption,
) -> None:
    """Show one product version with all its settings."""
    stored = product_service.get_product(db(ctx), code, version)
    if json_out:
        print_json(product_doc(stored))
        return
    table = Table(
        title=f"{stored.code} v{stored.version} · {stored.product.name}",
        caption=(
            f"loaded by {stored.loaded_by}, approved by {stored.approved_by} on "
            f"{stored.business_date.isoformat()} · digest {stored.digest[:16]}"
        ),
    )
    table.add_column("Setting", no_wrap=True)
    table.add_column("Value")
    for setting, value in flatten(stored.product.model_dump(mode="json")):
        table.add_row(setting, value)
    console.print(table)
