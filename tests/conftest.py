"""Shared fixtures: the kernelspec of the built kernel (kernel_client.BINARY) in a temporary
JUPYTER_PATH, a kernel shared by a test module, and a fresh kernel for a test of its own."""
from __future__ import annotations

import pytest

pytest.register_assert_rewrite("kernel_client")

from kernel_client import Kernel, install  # noqa: E402

# Install the kernelspec once, before jupyter_client reads JUPYTER_PATH. `install` also builds the
# session crate, as it does for a learner.
INSTALLED = install("jupyter")


@pytest.fixture(scope="module")
def kernel():
    """One kernel for the tests of a module (their variables meet: use distinct names)."""
    with Kernel() as k:
        yield k


@pytest.fixture
def fresh_kernel():
    """A kernel of the test's own, for one that crashes, interrupts or restarts it."""
    with Kernel() as k:
        yield k
