"""What routes share: pagination."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query

from lendcore.errors import InvalidInput

PAGE_LIMIT_DEFAULT = 50
PAGE_LIMIT_MAX = 500

Cursor = Annotated[
    str | None,
    Query(description="Opaque cursor from the previous page's next_cursor.", max_length=20),
]
Limit = Annotated[int, Query(ge=1, le=PAGE_LIMIT_MAX)]

# Record ids are 64-bit: a larger number names no record, and the database
# driver would refuse it with an overflow (a 500) rather than a 404.
ID_MAX = 2**63 - 1
RecordId = Annotated[int, Path(ge=1, le=ID_MAX)]


def after_from(cursor: str | None) -> int:
    if cursor is None:
        return 0
    if not cursor.isdigit() or int(cursor) > ID_MAX:
        raise InvalidInput("cursor is not one this API gave out")
    return int(cursor)


def next_cursor(last_key: int | None, count: int, limit: int) -> str | None:
    return str(last_key) if last_key is not None and count == limit else None
