"""Fixtures shared by the process tests of this folder: ``env`` (a prepared simulated registry with the
processes deployed) and ``loop`` (the rectification/enforcement processes deployed), each defined beside the
tests that introduced it."""
from tests.supervision.test_inspection_process import env  # noqa: F401  (fixture)
from tests.supervision.test_rectification_process import loop  # noqa: F401  (fixture)
