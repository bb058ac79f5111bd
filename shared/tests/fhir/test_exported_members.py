"""The public API of the ``closedloop.fhir`` packages: each declares it in ``__all__``.

Pinned here (as httpx's ``tests/test_exported_members.py`` does) so a change to what a package
offers is a deliberate one: a module added to a package must be listed, a name listed must
exist.
"""

from __future__ import annotations

import importlib
import pkgutil

import pytest

PACKAGES = [
    "closedloop.fhir",
    "closedloop.fhir.operations",
    "closedloop.fhir.rest",
    "closedloop.fhir.rest.openapi",
    "closedloop.fhir.search",
    "closedloop.fhir.search.index",
    "closedloop.fhir.storage",
]
# Packages whose public API is names rather than their modules (one module per $operation,
# reached through the registry).
NAMES_ONLY = {"closedloop.fhir.operations"}


@pytest.mark.parametrize("name", PACKAGES)
def test_every_listed_name_exists(name: str) -> None:
    package = importlib.import_module(name)
    for member in package.__all__:
        assert hasattr(package, member) or importlib.import_module(f"{name}.{member}")


@pytest.mark.parametrize("name", [p for p in PACKAGES if p not in NAMES_ONLY])
def test_every_public_module_is_listed(name: str) -> None:
    package = importlib.import_module(name)
    modules = {m.name for m in pkgutil.iter_modules(package.__path__) if not m.name.startswith("_")}
    assert modules <= set(package.__all__)
