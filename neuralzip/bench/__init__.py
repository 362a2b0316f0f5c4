"""Benchmark suite: neuralzip against the standard lossless codecs.

``codecs`` (what is measured), ``runner`` (measuring, one ``Record`` per image and codec),
``results`` (totals, JSON, merging), ``report`` (Markdown and plots), ``suite`` (all of
it, behind ``neuralzip benchmark``). Rates are in bits per subpixel (bpsp).
"""
