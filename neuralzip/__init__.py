"""neuralzip: learned lossless image compression.

>>> import numpy as np, neuralzip
>>> image = np.zeros((4, 5, 3), np.uint8)
>>> data = neuralzip.compress(image)
>>> bool((neuralzip.decompress(data) == image).all())
True
"""

from .api import compress, decompress, open, save
from .codec import DecodeError, UnsupportedImage
from .container import FormatError

__all__ = ["compress", "decompress", "open", "save", "DecodeError", "FormatError", "UnsupportedImage"]
__version__ = "0.1.0"
