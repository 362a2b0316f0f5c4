"""neuralzip: learned lossless image compression.

>>> import numpy as np, neuralzip
>>> image = np.zeros((4, 5, 3), np.uint8)
>>> data = neuralzip.compress(image)
>>> bool((neuralzip.decompress(data) == image).all())
True

Importing neuralzip also registers the ``.nz`` format with Pillow (``pillow_plugin``).
"""

from . import pillow_plugin  # noqa: F401 - registers the Pillow plugin
from .api import compress, decompress, open, save
from .core.codec import DecodeError, UnsupportedImage
from .core.fields import FormatError

# neuralzip.open is public too, but kept out of * imports, where it would hide the builtin open
__all__ = ["compress", "decompress", "open", "save", "DecodeError", "FormatError", "UnsupportedImage"]
__version__ = "0.8.0"
