"""FORMAT.md's byte-by-byte example is what the encoder writes and the decoder reads; the
version-1 and version-2 files of the same image, as those versions wrote them, still decode."""

import re
from pathlib import Path

import numpy as np

import neuralzip

FORMAT_MD = Path(__file__).resolve().parent.parent / "FORMAT.md"
IMAGE = np.dstack([np.array([[10, 20, 30], [40, 50, 60]], np.uint8), np.full((2, 3), 255, np.uint8)])
VERSION_1_FILE = bytes.fromhex(  # the same image as the version-1 example gave it: ANS payload
    "4e5a 0100 0305 70686f746f e8adac20 0302 18 0c 362b048c 02 00ff 6753cc26982102d203000000".replace(" ", ""))

VERSION_2_FILE = bytes.fromhex(  # the version-2 example: stored, model by name and hash
    "4e5a 0204 0305 70686f746f e8adac20 0302 18 06 362b048c 02 00ff 0a141e28323c".replace(" ", ""))

MODEL_7_FILE = bytes.fromhex(  # the example as 0.6 and 0.7 wrote it, with photo 1057c8e3 (registered model 7)
    "4e5a 0504 0307 0302 06 362b048c 02 00ff 0a141e28323c".replace(" ", ""))


def _example_bytes() -> bytes:
    """The bytes of the example table that follows 'Example: the whole ... file', in order."""
    text = FORMAT_MD.read_text()
    table = text[text.index("Example: the whole"):].split("\n\n")[1]
    cells = re.findall(r"^\| `([0-9a-f ]+)` \|", table, flags=re.M)
    return bytes.fromhex("".join(cells))


def test_format_md_example_is_the_encoders_output_and_decodes():
    data = _example_bytes()
    assert len(data) == 22
    assert neuralzip.compress(IMAGE) == data
    assert np.array_equal(neuralzip.decompress(data), IMAGE)


def test_the_version_1_2_and_4_examples_and_the_model_5_and_7_ones_still_decode():
    assert np.array_equal(neuralzip.decompress(VERSION_1_FILE), IMAGE)
    assert np.array_equal(neuralzip.decompress(VERSION_2_FILE), IMAGE)
    assert np.array_equal(neuralzip.decompress(MODEL_7_FILE), IMAGE)
    version_4 = _example_bytes()
    version_4 = version_4[:2] + b"\x04" + version_4[3:5] + b"\x03" + version_4[6:]  # registered model 3
    assert np.array_equal(neuralzip.decompress(version_4), IMAGE)
    model_5 = _example_bytes()[:5] + b"\x05" + _example_bytes()[6:]  # photo fa1a1841, retired
    assert np.array_equal(neuralzip.decompress(model_5), IMAGE)


def _limits_table() -> list[tuple[str, str, str]]:
    """(limit, value, code) of each row of FORMAT.md's Limits table."""
    text = FORMAT_MD.read_text()
    section = text[text.index("## Limits"):]
    table = section[section.index("| limit |"):].split("\n\n")[0].splitlines()[2:]
    return [tuple(cell.strip() for cell in row.strip("|").split(" | ")) for row in table]


def test_format_md_states_every_limit_of_the_code():
    import importlib

    from neuralzip import inputs
    from neuralzip.core import adaptation_block, codec, container

    rows = _limits_table()
    named = set()
    for limit, value, code in rows:
        module_name, attribute = code.strip("`").rsplit(".", 1)
        module = importlib.import_module(
            f"neuralzip.{module_name}" if module_name == "inputs" else f"neuralzip.core.{module_name}"
        )
        thing = getattr(module, attribute)  # every name in the table exists
        named.add(attribute)
        if isinstance(thing, int):
            stated = {int(n.replace(",", "")) for n in re.findall(r"\d[\d,]*", value)}
            assert thing in stated, f"FORMAT.md says {value!r} for {limit}, the code {thing:,}"
    limits = {name for module in (container, adaptation_block) for name in vars(module) if name.startswith("MAX_")}
    assert limits <= named, f"limits of the container missing from FORMAT.md: {sorted(limits - named)}"
    assert {"DEFAULT_MAX_PIXELS", "MAX_PAYLOAD_BITS"} <= named
    assert codec.DEFAULT_MAX_PIXELS == 1 << 26 and inputs.MAX_PAYLOAD_BITS == 48
    stdin = next(value for limit, value, _ in rows if limit.startswith("an image read from stdin"))
    assert f"{(8 * codec.DEFAULT_MAX_PIXELS + (1 << 26)) >> 20} MiB by default" in stdin


def test_compress_bound_is_the_formula_format_md_states():
    import os
    import zlib

    from neuralzip.core.container import MAX_METADATA, MAX_METADATA_BLOCK, compress_bound

    text = FORMAT_MD.read_text()
    assert "`n +\n⌊n/2^12⌋ + ⌊n/2^14⌋ + ⌊n/2^25⌋ + 13`" in text
    for n in (0, 1, 100, 16383, 65536, 1 << 20):
        assert compress_bound(n) == n + n // 4096 + n // 16384 + n // (1 << 25) + 13
        data = os.urandom(n)
        assert all(len(zlib.compress(data, level)) <= compress_bound(n) for level in (0, 1, 9))
    assert MAX_METADATA_BLOCK == compress_bound(MAX_METADATA) == 16_782_349
    assert f"compressBound(16 MiB) = {MAX_METADATA_BLOCK:,}" in text


def _header_table() -> list[dict[str, str]]:
    """The rows of FORMAT.md's header table (offset, size, field, versions, present, meaning)."""
    text = FORMAT_MD.read_text()
    lines = text[text.index("| offset | size | field |"):].split("\n\n")[0].splitlines()
    columns = [cell.strip() for cell in lines[0].strip("|").split("|")]
    return [dict(zip(columns, (cell.strip() for cell in re.split(r"(?<!\\)\|", row.strip()[1:-1])))) for row in lines[2:]]


def test_format_md_header_table_is_the_field_table():
    """Every field of the header's table (container.HEADER_FIELDS), in its order, with its
    size, the versions that have it and what else it needs; then the payload."""
    from neuralzip.core.container import HEADER_FIELDS

    rows = _header_table()
    *fields, payload = rows
    assert [row["field"] for row in fields] == [f.name for f in HEADER_FIELDS]
    for row, field in zip(fields, HEADER_FIELDS):
        versions = field.exists_in
        assert row["size"] == field.encoding.size, field.name
        assert row["versions"] == f"{versions[0]}–{versions[-1]}", field.name
        assert row["present"] == (field.when.doc if field.when else "always"), field.name
    assert (payload["field"], payload["size"], payload["present"]) == ("payload", "payload length", "always")
    sized = {row["size"]: row["field"] for row in fields if re.fullmatch("[a-z]", row["size"])}
    for letter, name in sized.items():  # a length says it: `n`, the ..., and comes right before
        length = next(f for f in HEADER_FIELDS if f.name == name).encoding.length
        assert rows[[row["field"] for row in rows].index(name) - 1]["field"] == length
        assert next(row for row in fields if row["field"] == length)["meaning"].startswith(f"`{letter}`")


def test_format_md_flags_are_the_flags_of_the_code():
    """FORMAT.md's flags cell says each bit in the versions that have it (container.FLAGS,
    from which the reader's known flags of each version come)."""
    from neuralzip.core.container import FLAGS, KNOWN_FLAGS
    from neuralzip.core.versions import FORMAT_VERSION

    cell = next(row for row in _header_table() if row["field"] == "flags")["meaning"]
    parts = re.split(r"Versions (\d) to (\d) only:", cell)
    stated = {int(bit): range(1, FORMAT_VERSION + 1) for bit in re.findall(r"\bbit (\d)[:,]", parts[0])}
    for first, last, part in zip(parts[1::3], parts[2::3], parts[3::3]):
        stated |= {int(bit): range(int(first), int(last) + 1) for bit in re.findall(r"\bbit (\d)[:,]", part)}
    assert stated == {flag.bit: flag.versions for flag in FLAGS}
    assert KNOWN_FLAGS == {1: 0x01, 2: 0x07, 3: 0x1F, 4: 0x1F, 5: 0x1F, 6: 0x1F}
