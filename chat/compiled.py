"""Querysets compiled to SQL once, then run with new values: for reads made on every connect.

Building and compiling a queryset costs the ORM several times what running
it costs (about 0.3 ms of CPU against 0.06 ms for a primary-key read), and a
reconnect storm makes the same few reads thousands of times a second. A
``Compiled`` keeps the queryset as the one statement of what is read (so the
SQL is still the ORM's, per database vendor), compiles it once per database
alias with a sample value for each argument, and then only binds the values.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

from django.core.exceptions import ImproperlyConfigured
from django.db import connections
from django.db.models import Model, QuerySet

M = TypeVar("M", bound=Model)


class Compiled(Generic[M]):
    """``build(**arguments)``'s SQL, compiled once per database alias; rows or model instances.

    ``samples`` gives each argument a value of its type, distinct from every
    other argument's and from the query's own constants: the compiled
    parameters are matched to the arguments by these values (a parameter that
    matches none is a constant of the query, such as an EXISTS's ``1``), and a
    sample that matches two arguments or none of the parameters is refused at
    the first compile (ImproperlyConfigured).
    """

    def __init__(self, build: Callable[..., QuerySet[M, Any]], **samples: Any) -> None:
        self.build = build
        self.samples = samples
        self._by_alias: dict[str, tuple[str, list[tuple[str | None, Any]], QuerySet[M, Any]]] = {}

    def _compiled(self, alias: str) -> tuple[str, list[tuple[str | None, Any]], QuerySet[M, Any]]:
        """(SQL, each parameter as (argument name, None) or (None, constant), the queryset)."""
        found = self._by_alias.get(alias)
        if found is None:
            queryset = self.build(**self.samples)
            sql, params = queryset.query.get_compiler(alias).as_sql()
            order: list[tuple[str | None, Any]] = []
            for param in params:
                names = [
                    n for n, v in self.samples.items() if type(v) is type(param) and v == param
                ]
                if len(names) > 1:
                    raise ImproperlyConfigured(
                        f"Compiled query: the parameter {param!r} matches the samples of "
                        f"{', '.join(names)}; give each argument a distinct sample."
                    )
                order.append((names[0], None) if names else (None, param))
            missing = set(self.samples) - {name for name, _ in order}
            if missing:
                raise ImproperlyConfigured(
                    f"Compiled query: the samples of {', '.join(sorted(missing))} are not "
                    "parameters of its SQL (adapted by the database backend?)."
                )
            found = self._by_alias[alias] = (sql, order, queryset)
        return found

    @staticmethod
    def _bind(order: list[tuple[str | None, Any]], arguments: dict[str, Any]) -> list[Any]:
        return [value if name is None else arguments[name] for name, value in order]

    def rows(self, *, using: str = "default", **arguments: Any) -> list[tuple[Any, ...]]:
        """The rows, as the compiled SELECT returns its columns."""
        sql, order, _ = self._compiled(using)
        with connections[using].cursor() as cursor:
            cursor.execute(sql, self._bind(order, arguments))
            return list(cursor.fetchall())

    def first(self, *, using: str = "default", **arguments: Any) -> M | None:
        """The first row as a model instance (every concrete field loaded), or None."""
        found = self.first_annotated(using=using, **arguments)
        return None if found is None else found[0]

    def first_annotated(
        self, *, using: str = "default", **arguments: Any
    ) -> tuple[M, tuple[Any, ...]] | None:
        """The first row as a model instance and its annotations' values, or None.

        For querysets that select every concrete field of their model (no
        ``only``, ``defer`` or ``values``), then any annotations, as Django
        orders them.
        """
        sql, order, queryset = self._compiled(using)
        model = queryset.model
        names = [field.attname for field in model._meta.concrete_fields]
        with connections[using].cursor() as cursor:
            cursor.execute(sql, self._bind(order, arguments))
            row = cursor.fetchone()
        if row is None:
            return None
        if len(row) != len(names) + len(queryset.query.annotation_select):
            raise ImproperlyConfigured(
                f"Compiled query on {model.__name__} returned {len(row)} columns, "
                f"not its {len(names)} fields and its annotations."
            )
        return model.from_db(using, names, row[: len(names)]), tuple(row[len(names) :])
