"""neuralzip: learned lossless image compression.

>>> import numpy as np, neuralzip
>>> image = np.zeros((4, 5, 3), np.uint8)
>>> data = neuralzip.compress(image)
>>> bool((neuralzip.decompress(data) == image).all())
True
"""

from .codec import compress, decompress

__all__ = ["compress", "decompress"]
__version__ = "0.1.0"
