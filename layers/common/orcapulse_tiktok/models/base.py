"""Binding of PynamoDB models to the table names of the function's environment.

Table names are only known at run time, so a model is bound on first use rather than at import
(an import-time ``os.environ`` read would make tests order-dependent)."""

from __future__ import annotations

from typing import TypeVar

from pynamodb.models import Model

M = TypeVar("M", bound=type[Model])


def bind[M: type[Model]](model: M, table_name: str) -> M:
    """Point ``model`` at ``table_name``, dropping a cached connection to another table."""
    if model.Meta.table_name != table_name:
        model.Meta.table_name = table_name
        model._connection = None
    return model
