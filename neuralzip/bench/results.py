"""A benchmark's results: records, per-codec totals, machine description, JSON round trip
and merging of a later run into earlier results.

Totals pool all images of a codec: bpsp = 8 * (sum of bytes) / (sum of subpixels), not a
mean of per-image rates.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import sys
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

from .codecs import BenchCodec
from .memory import method as memory_method
from .runner import Record

T = TypeVar("T")
FORMAT = 1
VERSIONED = ["neuralzip", "numpy", "imagecodecs", "pillow", "constriction", "matplotlib"]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def machine_info(label: str | None = None) -> dict[str, Any]:
    """What ran the benchmark: ``label`` (default: cores, architecture and CPU model),
    CPU, OS, Python and library versions, and how memory was measured."""
    cores, cpu = os.cpu_count(), _cpu_model()
    return {
        "label": label or f"{cores}-core {platform.machine()} CPU ({cpu})",
        "cpu": cpu,
        "cores": cores,
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "versions": {p: _version(p) for p in VERSIONED},
        "memory": memory_method(),
    }


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


def _measured(value: T | None) -> T:
    """A measurement that a coded record holds: ``measure`` sets ``bytes`` together with the
    encode's seconds, and ``decode_s`` when the decode succeeds."""
    if value is None:
        raise TypeError("a coded record lacks a measurement")
    return value


def _peak(values: list[float | None]) -> float | None:
    """The largest of ``values`` (0.0 of none); None where a record lacks it (one read from a
    results file without it)."""
    known = [v for v in values if v is not None]
    return None if len(known) < len(values) else max(known, default=0.0)


@dataclass
class Totals:
    """A codec over all its images: bytes and subpixels summed, rates in bpsp, seconds summed,
    memory the largest peak (MiB). Rates and peaks that some image lacks are None."""

    images: int
    errors: int
    subpixels: int
    bytes: int
    header_bytes: int | None
    nll_bits: float | None
    encode_s: float
    decode_s: float
    encode_mib: float | None
    decode_mib: float | None

    @classmethod
    def of(cls, records: list[Record]) -> Totals:
        coded = [r for r in records if r.bytes is not None]
        timed = [r for r in coded if r.decode_s is not None]

        def total(attr: str) -> Any:
            values = [getattr(r, attr) for r in coded]
            return None if not values or None in values else sum(values)

        return cls(
            images=len(records),
            errors=sum(r.error is not None for r in records),
            subpixels=sum(r.subpixels for r in coded),
            bytes=sum(_measured(r.bytes) for r in coded),
            header_bytes=total("header_bytes"),
            nll_bits=total("nll_bits"),
            encode_s=sum(_measured(r.encode_s) for r in coded),
            decode_s=sum(_measured(r.decode_s) for r in timed),
            encode_mib=_peak([r.encode_mib for r in coded]),
            decode_mib=_peak([r.decode_mib for r in timed]),
        )

    def _rate(self, bits: float | None) -> float | None:
        return None if bits is None or not self.subpixels else bits / self.subpixels

    @property
    def bpsp(self) -> float | None:
        return self._rate(8 * self.bytes)

    @property
    def payload_bpsp(self) -> float | None:
        return self._rate(None if self.header_bytes is None else 8 * (self.bytes - self.header_bytes))

    @property
    def nll_bpsp(self) -> float | None:
        return self._rate(self.nll_bits)

    @property
    def megapixels(self) -> float:
        return self.subpixels / 3e6

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "bpsp": self.bpsp, "payload_bpsp": self.payload_bpsp, "nll_bpsp": self.nll_bpsp}


@dataclass
class Results:
    """Everything a benchmark run writes. ``codecs`` maps each measured codec to its
    settings, header rule, run date and machine label; ``skipped`` maps codecs that could
    not run to the reason."""

    title: str
    machine: dict[str, Any]
    codecs: dict[str, dict[str, str]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    records: list[Record] = field(default_factory=list)

    @classmethod
    def start(cls, title: str, machine: dict[str, Any], codecs: list[BenchCodec], skipped: dict[str, str]) -> Results:
        date = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        meta = {
            c.name: {"settings": c.settings, "headers": c.headers, "date": date, "machine": machine["label"]}
            for c in codecs
        }
        return cls(title, machine, meta, dict(skipped))

    def records_of(self, codec: str) -> list[Record]:
        return [r for r in self.records if r.codec == codec]

    def totals(self) -> dict[str, Totals]:
        """Per measured codec, in the order the codecs were listed."""
        return {name: Totals.of(self.records_of(name)) for name in self.codecs}

    def images(self) -> list[str]:
        """Image labels in first-seen order."""
        return list(dict.fromkeys(r.image for r in self.records))

    def failures(self) -> list[Record]:
        return [r for r in self.records if r.error is not None]

    def merged_into(self, earlier: Results) -> Results:
        """``earlier`` with this run's codecs replaced by this run's records (other codecs'
        records kept, codecs in earlier's order, new ones last); machine and title from this run."""
        kept = [name for name in earlier.codecs if name not in self.codecs]
        return Results(
            self.title,
            self.machine,
            codecs={**earlier.codecs, **self.codecs},  # a replaced codec keeps its place
            skipped={
                **{n: why for n, why in earlier.skipped.items() if n not in self.codecs},
                **{n: why for n, why in self.skipped.items() if n not in kept},
            },
            records=[r for r in earlier.records if r.codec in kept] + self.records,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "title": self.title,
            "machine": self.machine,
            "codecs": self.codecs,
            "skipped": self.skipped,
            "totals": {name: t.to_dict() for name, t in self.totals().items()},
            "records": [r.to_dict() for r in self.records],
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Results:
        if d.get("format") != FORMAT:
            raise ValueError(f"unsupported results format {d.get('format')!r} (expected {FORMAT})")
        return cls(d["title"], d["machine"], d["codecs"], d["skipped"], [Record.from_dict(r) for r in d["records"]])

    def save(self, path: Path) -> None:
        """Write JSON with one record a line and floats rounded to 6 decimals."""
        doc = _rounded(self.to_json())
        head = json.dumps({k: v for k, v in doc.items() if k != "records"}, indent=1)
        records = ",\n".join("  " + json.dumps(r) for r in doc["records"])
        path.write_text(f'{head[:-2]},\n "records": [\n{records}\n ]\n}}\n')

    @classmethod
    def load(cls, path: Path) -> Results:
        return cls.from_json(json.loads(path.read_text()))
