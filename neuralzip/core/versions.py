"""Format versions, and the registered models that versions 4 to 6 name by a number
(FORMAT.md, "Registered models")."""

from __future__ import annotations

FORMAT_VERSION = 6  # the newest version; a file is written in the oldest one that holds it
METADATA_KINDS_VERSION = 6  # version 6 is version 5 plus metadata kinds 5 and 6 (``metadata.PNG_TEXT``, ``COMMENT``)
# version 4 names a registered model by a number instead of its name and hash (FORMAT.md,
# "Registered models"); version 5 has the same layout and names the registered models of
# int16 arithmetic (intmodel.py), 4 those of float64 arithmetic; version 6 names any of them.
# An entry, once released, never changes.
REGISTERED_MODELS = {
    1: ("photo", bytes.fromhex("e8adac20")),
    2: ("cifar10", bytes.fromhex("20ebacbd")),
    3: ("photo", bytes.fromhex("265c3c51")),
    4: ("cifar10", bytes.fromhex("b2b986c5")),
    5: ("photo", bytes.fromhex("fa1a1841")),
    6: ("cifar10", bytes.fromhex("5274e889")),
    7: ("photo", bytes.fromhex("1057c8e3")),
    8: ("cifar10", bytes.fromhex("1eeccc0d")),
    9: ("photo-wide", bytes.fromhex("11446381")),
    10: ("photo-fast", bytes.fromhex("ba0689e4")),
    11: ("photo-fast", bytes.fromhex("b98f630b")),
    12: ("photo-wide", bytes.fromhex("fee4933c")),
    13: ("cifar10", bytes.fromhex("254532d7")),
}
# each model's oldest format version
REGISTERED_VERSION = {1: 4, 2: 4, 3: 4, 4: 4, 5: 5, 6: 5, 7: 5, 8: 5, 9: 5, 10: 5, 11: 5, 12: 5, 13: 5}
MODEL_NUMBER_VERSION = 4  # from version 4 on, a file names its (registered) model by a number
REGISTERED_PRECISION = 24  # version 4 has no precision byte: the coder precision is 24 bits
_NUMBERS = {model: number for number, model in REGISTERED_MODELS.items()}


def registered_number(name: str, sha: bytes) -> int | None:
    """The number of model ``name`` with weights ``sha`` (4 bytes) in ``REGISTERED_MODELS``,
    or None for an unregistered one."""
    return _NUMBERS.get((name, sha))


def model_versions(number: int) -> set[int]:
    """The format versions whose files may name registered model ``number``: its own
    (``REGISTERED_VERSION``), and every version from 6 on, which adds only metadata kinds."""
    return {REGISTERED_VERSION[number], *range(METADATA_KINDS_VERSION, FORMAT_VERSION + 1)}
