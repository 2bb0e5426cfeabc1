"""Shared by every test file: each test starts from Keras' float32 policy.

Under pytest-xdist one worker process runs many test files in turn, so a test that sets a global
mixed-precision policy (mixed_bfloat16 layer checks, mixed_float16 GAN steps) and fails or forgets
to reset it would change the numbers of the tests that follow it (measured: 1e-3 relative errors).
"""

import sys

import pytest


@pytest.fixture(autouse=True)
def _float32_policy():
    yield
    if "keras" in sys.modules:  # never import Keras here: some tests check what an import pulls in
        sys.modules["keras"].mixed_precision.set_global_policy("float32")
