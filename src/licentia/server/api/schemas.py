"""Response shapes shared by every resource."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel, ConfigDict

from licentia.server.db.pagination import Page

T = TypeVar("T", bound=BaseModel)


class Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class PageOut(BaseModel, Generic[T]):
    """One page of a list; pass ``next_cursor`` as ``cursor`` to get the next one."""

    items: list[T]
    next_cursor: str | None


def page_of(page: Page[Any], convert: Callable[[Any], T]) -> PageOut[T]:
    return PageOut[T](items=[convert(item) for item in page.items], next_cursor=page.next_cursor)


class PageParams(BaseModel):
    cursor: str | None = None
    limit: int = 50


def page_params(
    cursor: str | None = Query(None, description="next_cursor of the previous page"),
    limit: int = Query(50, ge=1, le=200),
) -> PageParams:
    return PageParams(cursor=cursor, limit=limit)


def each(items: Iterable[Any], convert: Callable[[Any], T]) -> list[T]:
    return [convert(item) for item in items]
