"""Fixtures shared by the test modules."""

import pytest


@pytest.fixture(scope="session")
def quick_panels():
    """Every panel of :mod:`pyspb.paper` at quick size, computed once for the whole session.

    Tests must not change these Datasets (copy one first).
    """
    from pyspb import paper

    return {name: paper.compute(name, quick=True) for name in paper.FIGURES}
