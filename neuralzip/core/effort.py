"""Effort levels: how much work the encoder spends for how many bytes, as ``cjxl -e`` does.

An effort level picks the encoder's work: how long the per-image adaptation searches
(``adapt.Search``), whether LZMA2 is tried against the model on images that a fast screen
says may be graphics, and the model, where another one is shipped (``model_suffix``; the
file names the model, so any decoder reads it). ``photo`` codes with ``photo-fast`` at
level 1 (a third of the multiply-adds and of the mixture components: decoding costs about
0.7 of ``photo``'s), with itself at level 2, and with ``photo-wide`` (256 and 129 hidden
units against 128 and 128: decoding costs about 1.15 of ``photo``'s) at levels 3 to 5,
whose decoding costs the same. Costs per level, measured:
``benchmarks/results/speed/results.md``; the default's model: ``benchmarks/results/wide_default.md``.
"""

from __future__ import annotations

from dataclasses import dataclass

from .adapt import Search


@dataclass(frozen=True)
class Effort:
    """``search``: the adaptation's work, None for no adaptation; ``packed_trial``: try
    LZMA2 where the screen says it may win; ``model_suffix``: model ``<name><suffix>`` codes
    instead of ``<name>`` where it is shipped."""

    level: int
    search: Search | None
    packed_trial: bool
    summary: str
    model_suffix: str = ""


# summaries: encode time of kodim01 against JPEG-XL e7's in the same run, and Kodak-24 bpsp
# (benchmarks/results/speed/results.md, benchmarks/results/kodak/cli_roundtrip*.md); the
# searches were chosen on validation photos (benchmarks/results/adaptation_search.md)
EFFORTS = {
    1: Effort(
        1,
        Search(steps=60, batch=2048, sample=1 << 15),
        False,
        "photo-fast, the fastest to decode, no LZMA2 trial (encode 0.8x JPEG-XL e7's time; Kodak 2.856 bpsp)",
        model_suffix="-fast",
    ),
    2: Effort(2, Search(steps=24, batch=2048, sample=1 << 14), True, "photo, a short adaptation (1.0x; Kodak 2.758)"),
    3: Effort(
        3,
        Search(steps=60, batch=2048, sample=1 << 15),
        True,
        "the default: photo-wide (1.5x; Kodak 2.719)",
        model_suffix="-wide",
    ),
    4: Effort(
        4,
        Search(steps=160, batch=2048, sample=1 << 16),
        True,
        "photo-wide, a longer adaptation (2.6x; Kodak 2.709)",
        model_suffix="-wide",
    ),
    5: Effort(
        5,
        Search(steps=80, batch=8192, sample=1 << 17),
        True,
        "photo-wide, the longest adaptation (4.5x; Kodak 2.705)",
        model_suffix="-wide",
    ),
}
DEFAULT_EFFORT = 3
FAST_EFFORT = 1  # --fast


def effort(level: int) -> Effort:
    """The effort ``level``; ValueError outside 1..5."""
    if level not in EFFORTS:
        raise ValueError(f"effort {level} is not one of {min(EFFORTS)}..{max(EFFORTS)}")
    return EFFORTS[level]
