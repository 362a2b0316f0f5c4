"""Fuzzing the decoder with damaged real .nz files.

A seeded mutator damages small real files of every mode (bit flips, byte rewrites,
truncations, insertions, deletions, appended bytes, header fields rewritten to other or
extreme values, and the metadata block's entry list rewritten inside a valid zlib stream:
kinds, counts, order and lengths). Every damaged file must decode to exactly the original image or be
refused with FormatError or DecodeError: no other exception, no hang, and never other
pixels returned silently.
"""

import collections
import dataclasses
import time
import zlib

import numpy as np
import pytest

import neuralzip
from neuralzip.core import codec as codec_module
from neuralzip.core.container import Header, pack_metadata
from neuralzip.core.fields import varint
from neuralzip.core.metadata import ITXT_COMPRESSED, TEXT_CHUNK, Metadata, PngText

MUTATIONS_PER_FILE = 600
MAX_PIXELS = 1024  # a rewritten size may not make one decode slow
SLOWEST_DECODE_S = 5.0


@pytest.fixture(scope="module")
def originals(urban_crop):
    """(name, image, .nz bytes) of small images of every mode, with and without per-image LS,
    and a packed one."""
    rgb = urban_crop[10:13, 20:24]
    grey = urban_crop[30:33, 40:45, 1]
    alpha = np.array([[0, 0, 255, 255], [0, 128, 255, 255], [9, 9, 9, 255]], np.uint8)
    images = {
        "RGB": rgb,
        "L": grey,
        "RGBA": np.dstack([rgb, alpha]),
        "LA": np.dstack([grey, np.full(grey.shape, 200, np.uint8)]),
    }
    files = [(mode, image, neuralzip.compress(image)) for mode, image in images.items()]
    flat = np.full((12, 16, 3), 200, np.uint8)  # a graphic: its payload is packed with LZMA2
    flat[4:8, 2:14] = (0, 90, 250)
    files.append(("packed", flat, neuralzip.compress(flat)))
    assert Header.unpack(files[-1][2])[0].packed
    meta = Metadata(icc_profile=b"icc " * 10, exif=b"Exif\0\0MM\0*", xmp=b"<x/>", text={"a": "b", "Title": "t"})
    files.append(("metadata", rgb, neuralzip.compress(rgb, metadata=meta)))
    kept_whole = [PngText(TEXT_CHUNK, b"a", b"b"), PngText(TEXT_CHUNK, b"a", b"c"),
                  PngText(ITXT_COMPRESSED, b"k", b"v", b"de")]
    meta_6 = dataclasses.replace(meta, text={}, png_text=kept_whole, comments=[b"comment", b"another"])
    files.append(("metadata v6", rgb, neuralzip.compress(rgb, metadata=meta_6)))
    assert files[-1][2][2] == 6
    with pytest.MonkeyPatch.context() as patch:  # small files that carry per-image LS coefficients
        patch.setattr(codec_module, "IMAGE_LS_MIN_PIXELS", 1)
        for mode, image in (("RGB", urban_crop[8:20, 16:32]), ("L", urban_crop[30:42, 40:56, 1])):
            image = np.ascontiguousarray(image)  # 12x16: the ANS file, coefficients and all, beats raw
            files.append((f"{mode}+LS", image, neuralzip.compress(image)))
            assert Header.unpack(files[-1][2])[0].coefs is not None
    return files


def _rewrite_field(data: bytes, rng: np.random.Generator) -> bytes:
    """The file with one header field rewritten, through the container's own writer."""
    header, offset = Header.unpack(data)
    payload = data[offset:]
    extreme_sides = [0, 1, 2, 3, 5, 17, 1 << 24, (1 << 24) + 1, 100_000, (1 << 35) - 1]
    by_name = ["precision", "model_name", "model_sha"]  # as version 3 writes them: no version-6 metadata
    field = rng.choice(["width", "height", "payload_length", "checksum", "coefs", "alpha"]
                       + (by_name if header.version < 6 else []))
    value = {
        "width": lambda: int(rng.choice(extreme_sides)),
        "height": lambda: int(rng.choice(extreme_sides)),
        "payload_length": lambda: int(rng.choice([0, 1, len(payload) - 4, len(payload) + 4, 1 << 34])),
        "checksum": lambda: int(rng.integers(0, 1 << 32)),
        "precision": lambda: int(rng.integers(0, 256)),
        "model_name": lambda: str(rng.choice(["cifar10", "photo2", "x" * 32, "ph"])),
        "model_sha": lambda: rng.bytes(4),
        "coefs": lambda: None if header.stored or header.packed or header.coefs is not None and rng.random() < 0.3 else
        rng.integers(-32768, 32768, header.image_mode.ls_coefs),
        "alpha": lambda: None if header.alpha is None else
        rng.choice([b"\x00" + rng.bytes(1), b"\x01" + rng.bytes(int(rng.integers(0, 20))),
                    rng.bytes(int(rng.integers(1, 4)))]),
    }[field]()
    version = 3 if header.version >= 4 and field in ("precision", "model_name", "model_sha") else header.version
    return dataclasses.replace(header, **{field: value}, version=version).pack() + payload  # 4: registered models only


def _rewrite_entries(data: bytes, rng: np.random.Generator) -> bytes:
    """The file with its metadata block's entries rewritten (inside a valid zlib stream, so
    that the entry parser, not zlib, meets them): a kind repeated, unknown or out of order,
    an entry empty, cut short or claiming more than follows, or tens of thousands of them."""
    header, offset = Header.unpack(data)
    entries = [bytes([kind]) + varint(len(body)) + body for kind, body in header.metadata.entries()]
    choice = rng.integers(0, 7)
    if choice == 0:
        entries.insert(int(rng.integers(0, len(entries) + 1)), entries[int(rng.integers(0, len(entries)))])
    elif choice == 1:
        entries.reverse()
    elif choice == 2:
        entries.append(bytes([int(rng.choice([0, 5, 255])), 1, 0]))
    elif choice == 3:
        entries.append(b"\x04\x00")  # empty
    elif choice == 4:
        entries.append(b"\x04" + varint(int(rng.integers(2, 1 << 20))) + b"a\0")  # claims more than follows
    elif choice == 5:
        entries += [b"\x04\x03a\0b"] * int(rng.choice([10, 70_000]))
    else:
        at = int(rng.integers(0, len(entries)))
        entries[at] = entries[at][: int(rng.integers(1, len(entries[at])))]  # cut short
    block, old = zlib.compress(b"".join(entries), 9), pack_metadata(header.metadata)
    head = header.pack()
    cut = len(head) - len(old) - len(varint(len(old)))  # the metadata block ends the header
    return head[:cut] + varint(len(block)) + block + data[offset:]


def _damage(data: bytes, rng: np.random.Generator) -> tuple[str, bytes]:
    """(kind of mutation, damaged bytes), never ``data`` itself."""
    while True:
        kind, damaged = _mutate(data, rng)
        if damaged != data:
            return kind, damaged


def _mutate(data: bytes, rng: np.random.Generator) -> tuple[str, bytes]:
    kinds = ["flip", "byte", "header byte", "truncate", "insert", "delete", "append", "field"]
    if Header.unpack(data)[0].metadata:
        kinds.append("metadata entries")
    kind = rng.choice(kinds)
    if kind == "metadata entries":
        return kind, _rewrite_entries(data, rng)
    at = int(rng.integers(0, len(data)))
    if kind == "flip":
        return kind, data[:at] + bytes([data[at] ^ (1 << int(rng.integers(0, 8)))]) + data[at + 1:]
    if kind == "byte":
        return kind, data[:at] + rng.bytes(1) + data[at + 1:]
    if kind == "header byte":  # version, flags, mode, name length or the first name byte
        at = int(rng.integers(2, 7))
        return kind, data[:at] + bytes([int(rng.choice([0, 1, 2, 3, 4, 255, data[at] + 1]) % 256)]) + data[at + 1:]
    if kind == "truncate":
        return kind, data[:at]
    if kind == "insert":
        return kind, data[:at] + rng.bytes(int(rng.integers(1, 9))) + data[at:]
    if kind == "delete":
        return kind, data[:at] + data[at + int(rng.integers(1, 9)):]
    if kind == "append":
        return kind, data + rng.bytes(int(rng.integers(1, 9)))
    return kind, _rewrite_field(data, rng)


def test_damaged_files_decode_exactly_or_are_refused(originals):
    rng = np.random.default_rng(20241124)
    outcomes = collections.Counter()  # (kind of mutation, outcome) -> files
    slowest = 0.0
    for name, image, data in originals:
        for i in range(MUTATIONS_PER_FILE):
            kind, damaged = _damage(data, rng)
            t0 = time.perf_counter()
            try:
                decoded = neuralzip.decompress(damaged, max_pixels=MAX_PIXELS)
            except (neuralzip.FormatError, neuralzip.DecodeError) as exc:
                outcomes[kind, type(exc).__name__] += 1
            except Exception as exc:
                pytest.fail(f"{name} mutation {i} ({kind}): {type(exc).__name__}: {exc}")
            else:
                assert decoded.shape == image.shape and np.array_equal(decoded, image), (
                    f"{name} mutation {i} ({kind}) decoded to other pixels")
                outcomes[kind, "identical image"] += 1  # e.g. zlib's informational FLEVEL bits
            slowest = max(slowest, time.perf_counter() - t0)
    totals = collections.Counter()
    for (kind, outcome), files in sorted(outcomes.items()):
        totals[outcome] += files
    print(f"\nfuzz: {sum(totals.values())} damaged files: {dict(totals)}; slowest decode {slowest:.2f} s")
    for kind in sorted({kind for kind, _ in outcomes}):
        print(f"  {kind}: {({o: n for (k, o), n in outcomes.items() if k == kind})}")
    assert sum(totals.values()) == MUTATIONS_PER_FILE * len(originals)
    assert slowest < SLOWEST_DECODE_S
    assert totals["FormatError"] and totals["DecodeError"]  # both kinds of refusal were reached
