"""Every package says what it offers: an ``__all__`` in each ``__init__.py``, naming the
package's public names or, where the package re-exports nothing, its public modules. This pins
that list (as httpx's ``tests/test_exported_members.py`` does): a name that stops resolving, or
a new package without a declaration, fails here rather than in a caller."""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
from collections.abc import Iterator

import pytest

ROOTS = ("closedloop", "referral_api", "directory_api", "notifier", "auth")
# closedloop.fhir's packages get their declarations separately
UNDECLARED_YET = ("closedloop.fhir",)


def _packages() -> Iterator[str]:
    for root in ROOTS:
        yield root
        path = importlib.import_module(root).__path__
        for info in pkgutil.walk_packages(path, f"{root}."):
            if info.ispkg:
                yield info.name


PACKAGES = sorted(_packages())


def _resolves(package: str, name: str) -> bool:
    module = importlib.import_module(package)
    return hasattr(module, name) or importlib.util.find_spec(f"{package}.{name}") is not None


@pytest.mark.parametrize("package", PACKAGES)
def test_package_declares_public_names(package: str) -> None:
    exported = getattr(importlib.import_module(package), "__all__", None)
    if exported is None:
        assert package.startswith(UNDECLARED_YET), f"{package} has no __all__"
        return
    assert len(set(exported)) == len(exported), f"{package}.__all__ repeats a name"
    missing = [name for name in exported if not _resolves(package, name)]
    assert not missing, f"{package}.__all__ names what it does not have: {missing}"
