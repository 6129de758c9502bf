"""The SDK's read-only values (Tolerance, Virtualization, SyncResult…) behave as values:
equal by content, usable as keys, copied and pickled whole, and never changed in place."""

from __future__ import annotations

import copy
import pickle
from pathlib import Path
from typing import Any

import pytest

from licentia.client import SystemFactorSource, Tolerance, Virtualization


def test_values_compare_and_hash_by_content() -> None:
    assert Tolerance.at_least(3) == Tolerance("k-of-n", 3)
    assert Tolerance.at_least(3) != Tolerance.at_least(2)
    assert Virtualization(vm="kvm") != Virtualization(container="kvm")
    assert len({Virtualization(vm="kvm"), Virtualization(vm="kvm"), Virtualization()}) == 2
    assert Tolerance.medium() != "medium"  # a value never equals another type


def test_values_are_read_only() -> None:
    tolerance = Tolerance.medium()
    with pytest.raises(AttributeError, match="read-only"):
        tolerance.name = "loose"
    with pytest.raises(AttributeError, match="read-only"):
        del tolerance.k
    with pytest.raises(AttributeError):
        tolerance.extra = 1
    assert tolerance == Tolerance.medium()


def test_values_copy_and_pickle_whole() -> None:
    for value in (Tolerance.at_least(2), Virtualization(vm="kvm", container="docker")):
        assert copy.copy(value) == value
        assert copy.deepcopy(value) == value
        assert _round_trip(value) == value
    source = SystemFactorSource(Path("/srv/root"))
    assert _round_trip(source).root == Path("/srv/root")


def test_a_value_checks_its_fields_when_built() -> None:
    with pytest.raises(ValueError, match="k-of-n"):
        Tolerance("medium", 2)
    with pytest.raises(ValueError, match="at least 1"):
        Tolerance.at_least(0)


def test_repr_names_the_fields() -> None:
    assert repr(Virtualization(vm="kvm")) == "Virtualization(vm='kvm', container=None)"
    assert repr(Tolerance.at_least(2)) == "Tolerance(name='k-of-n', k=2)"


def _round_trip(value: object) -> Any:
    return pickle.loads(pickle.dumps(value))  # noqa: S301 (bytes this test made)
