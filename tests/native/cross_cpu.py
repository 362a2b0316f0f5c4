"""The same tables on another CPU: decode and encode files here, replay them on aarch64.

``record`` (here, with constriction): decode each .nz file, keeping the symbols the ANS
decoder pulled and the sha256 of every frequency table the kernel built; encode the decoded
image again with the file's own weights (effort 1's search for photo-fast files, else the
default's) and hash every symbol and table the encoder handed to ANS (so the LS fit and the
per-image adaptation count too).
``replay`` (on the other CPU, where constriction may be missing: it is stubbed): decode the
same files feeding the recorded symbols to the kernel, encode as above, and compare every
hash. Prints SAME or DIFFERENT and exits 1 on a difference.

Run on aarch64 under qemu-user from x86-64 (Debian 12; what was run for 0.6.3):

    apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user debootstrap
    debootstrap --arch=arm64 --foreign --variant=minbase --include=python3,python3-numpy,libpython3.11-dev \\
        bookworm /tmp/arm64 http://deb.debian.org/debian
    for d in /tmp/arm64/var/cache/apt/archives/*.deb; do dpkg-deb -x "$d" /tmp/arm64; done
    ln -sf blas/libblas.so.3 /tmp/arm64/usr/lib/aarch64-linux-gnu/libblas.so.3
    ln -sf lapack/liblapack.so.3 /tmp/arm64/usr/lib/aarch64-linux-gnu/liblapack.so.3
    mkdir -p /tmp/armpkg && git ls-files neuralzip | grep '\\.py$' | xargs cp --parents -t /tmp/armpkg
    cp "$(python -c 'import threadpoolctl; print(threadpoolctl.__file__)')" /tmp/armpkg
    for f in _kernel _adapt; do aarch64-linux-gnu-gcc -shared -fPIC -O3 -std=c11 -ffp-contract=off \\
        -fno-fast-math -fno-math-errno -fwrapv -pthread -I /tmp/arm64/usr/include/python3.11 \\
        -I /tmp/arm64/usr/include -I neuralzip/core neuralzip/core/$f.c \\
        -o /tmp/armpkg/neuralzip/core/$f.cpython-311-aarch64-linux-gnu.so; done
    python tests/native/cross_cpu.py record /tmp/cross.json tests/golden/*_v5_*.nz
    PYTHONPATH=/tmp/armpkg NEURALZIP_WEIGHTS=$PWD/weights QEMU_LD_PREFIX=/tmp/arm64 \\
        qemu-aarch64 /tmp/arm64/usr/bin/python3.11 tests/native/cross_cpu.py replay /tmp/cross.json \\
        tests/golden/*_v5_*.nz

(On Linux aarch64 PyPI has no constriction wheel, hence the stub: the ANS coder is Rust
integer code, the same on every CPU; what this checks is everything that feeds it.)
"""

import hashlib
import json
import sys
import types
from pathlib import Path

MODE, RECORD, FILES = sys.argv[1], Path(sys.argv[2]), [Path(p) for p in sys.argv[3:]]
if MODE == "replay":

    class _Stub:
        def __getattr__(self, name):
            return _Stub()

        def __call__(self, *args, **kwargs):
            return _Stub()

    sys.modules["constriction"] = _Stub()
    # the core only: the package's __init__ imports Pillow, which the other machine may lack
    found = next(Path(p) / "neuralzip" for p in sys.path if (Path(p) / "neuralzip" / "core").is_dir())
    package = types.ModuleType("neuralzip")
    package.__path__ = [str(found)]
    sys.modules["neuralzip"] = package

import numpy as np  # noqa: E402

from neuralzip import zoo  # noqa: E402
from neuralzip.core import _kernel  # noqa: E402
from neuralzip.core import codec as codec_module  # noqa: E402


def _decode(codec, data: bytes, recorded: np.ndarray | None) -> tuple[np.ndarray, str, np.ndarray]:
    """(image, sha256 of every table, the symbols pulled) of one file, decoded by ``codec``."""
    pulled, tables = [], []
    real = codec_module.StageDecoder
    if recorded is None:

        class Recording(real):
            def pull(self, freqs):
                symbols = super().pull(freqs)
                pulled.append(np.array(symbols, np.int32))
                return symbols

        codec_module.StageDecoder = Recording
    else:
        at = [0]

        class Replaying:
            def __init__(self, payload):
                pass

            def pull(self, freqs):
                at[0] += len(freqs)
                return recorded[at[0] - len(freqs) : at[0]]

            def valid_bits(self):
                return 1 << 40

            def exhausted(self):
                return True

            def pull_terminator(self):
                return True

        codec_module.StageDecoder = Replaying
    try:
        image = codec.decode(data, record=tables)
    finally:
        codec_module.StageDecoder = real
    digest = hashlib.sha256(b"".join(np.ascontiguousarray(t, np.float64).tobytes() for t in tables)).hexdigest()
    return image, digest, np.concatenate(pulled) if pulled else np.zeros(0, np.int32)


def _encode_digest(name: str, zoo_model, image: np.ndarray) -> str:
    """sha256 of every symbol and table the encoder hands to ANS for ``image``, coded with
    the file's own weights ``zoo_model`` (effort 1's search for photo-fast files, else the
    default's)."""
    digest, real = hashlib.sha256(), codec_module.StageEncoder

    class Hashing(real):
        def __init__(self):
            if MODE == "record":
                super().__init__()

        def prepend(self, symbols, freqs):
            digest.update(np.asarray(symbols, np.int32).tobytes() + np.asarray(freqs, np.float64).tobytes())
            if MODE == "record":
                super().prepend(symbols, freqs)

        def finish(self):
            return super().finish() if MODE == "record" else b""

    codec_module.StageEncoder = Hashing
    try:
        codec_module.Codec(zoo_model, effort=1 if "fast" in name else 3).encode(image)
    finally:
        codec_module.StageEncoder = real
    return digest.hexdigest()


def main() -> None:
    recorded = json.loads(RECORD.read_text()) if MODE == "replay" else {}
    results = {"isa": _kernel.isa()}
    for path in FILES:
        data = path.read_bytes()
        symbols = np.frombuffer(bytes.fromhex(recorded[path.name]["symbols"]), np.int32) if recorded else None
        codec = zoo.codec_for_file(data)
        image, tables, pulled = _decode(codec, data, symbols)
        results[path.name] = {
            "decode_tables": tables,
            "pixels": hashlib.sha256(np.ascontiguousarray(image).tobytes()).hexdigest(),
            "encode_tables": _encode_digest(path.name, codec.zoo_model, image),
        }
        print(path.name, {k: v[:16] for k, v in results[path.name].items()}, flush=True)
        if MODE == "record":
            results[path.name]["symbols"] = pulled.tobytes().hex()
    if MODE == "record":
        RECORD.write_text(json.dumps(results))
        return
    same = all(results[n][k] == recorded[n][k] for n in results if n != "isa" for k in results[n])
    print(f"recorded on {recorded['isa']}, replayed on {results['isa']}:", "SAME" if same else "DIFFERENT")
    sys.exit(0 if same else 1)


if __name__ == "__main__":
    main()
