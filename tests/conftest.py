"""Shared fixtures.  Every test must leave /dev/shm as it found it."""
import os

import pytest

SHM = "/dev/shm"


def _shmparse_segments():
    try:
        return {n for n in os.listdir(SHM) if "shmparse" in n.lower()}
    except FileNotFoundError:   # no /dev/shm on this platform
        return set()


@pytest.fixture(autouse=True)
def _no_leaked_segments():
    before = _shmparse_segments()
    yield
    leaked = _shmparse_segments() - before
    assert not leaked, f"test left shared-memory segments behind: {sorted(leaked)}"
