"""The bit-exact core: everything that decides a .nz file's bytes, numpy and C only.

Pipeline, one module a stage: image -> ``context`` (causal neighbourhood; per-image LS fit
in ``ls``) -> ``adapt`` (encoder only: the model's last layers tuned to the image) ->
``intmodel`` (integer MLP) -> ``tables`` (integer mixture CDF, two 16-symbol stages per
value) -> ``ans`` (constriction's ANS coder, terminated) -> ``container`` (header and
metadata block; FORMAT.md), with ``adaptation_block``, ``alpha`` and ``metadata``, its
fields' bytes in ``fields`` and the versions and registered models in ``versions``.
Graphics the model codes badly take
``packed`` (LZMA2) instead of the last three. ``kernel`` (``_kernel.c``) computes the per-pixel stages
for ``codec``, which ties them together. Units and layouts: ``units``; the mixture the model's outputs
describe (once, for the tables and training's loss): ``mixture``. Every bitstream
change lands here and bumps the format version.
"""
