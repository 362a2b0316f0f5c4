"""The docstring examples are golden tests too (ans.py prints the exact compressed words)."""

import doctest

import pytest

import neuralzip
from neuralzip.core import ans


@pytest.mark.parametrize("module", [ans, neuralzip], ids=lambda m: m.__name__)
def test_docstring_examples(module):
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0
