"""The docstring examples are golden tests too (coder.py prints the exact compressed words)."""

import doctest

import pytest

import neuralzip
from neuralzip import coder


@pytest.mark.parametrize("module", [coder, neuralzip], ids=lambda m: m.__name__)
def test_docstring_examples(module):
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0
