"""Fixtures shared by the test modules."""

import os

import pytest


@pytest.fixture(scope="session")
def quick_panels():
    """Every panel of :mod:`pyspb.paper` at quick size, computed once for the whole session.

    Tests must not change these Datasets (copy one first).
    """
    from pyspb import paper

    return {name: paper.compute(name, quick=True) for name in paper.FIGURES}


@pytest.fixture
def fsync_log(monkeypatch):
    """Each ``os.fsync`` (with the path of its descriptor, from /proc) and ``os.replace``, in order."""
    if not os.path.isdir("/proc/self/fd"):
        pytest.skip("reads descriptors' paths from /proc")
    events: list[tuple[str, str]] = []
    fsync, replace = os.fsync, os.replace

    def recording_fsync(fd):
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        fsync(fd)

    def recording_replace(src, dst):
        events.append(("replace", os.fspath(src)))
        replace(src, dst)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    monkeypatch.setattr(os, "replace", recording_replace)
    return events
