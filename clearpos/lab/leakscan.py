"""Leak scan: find the test data's secrets in files that must never hold them.

The secrets are known because the test data is: world files list every
card's PAN, expiry and PIN and every terminal's master key, and the working
keys a run issued are recovered by unsealing the stores it left behind (the
terminals' ``terminal.db`` and the host's store) with the KEKs the run used.
Looked for in every byte of every file under the given paths:

==============  ==============================================================
``pan``         a full PAN as ASCII digits, or packed BCD (either nibble
                alignment, as fields 2 and 35 carry it; BCD only when it packs
                to 5 distinct bytes or more, see :func:`_bcd_forms`), or
                written in groups with spaces, dashes or dots between them
                (the masking's detector, :func:`clearpos.wire.mask.find_pans`)
``track2``      PAN + ``=``/``D`` + expiry, ASCII (``D`` either case) or packed BCD
``chip-data``   chip card data as field 55 or a card would carry it, raw or as hex
                (either case): tag ``5A`` (the PAN, packed BCD, ``F``-padded) and
                ``57`` (track 2 equivalent: PAN ``D`` expiry ...) of a known card
                with their length byte, and any ``9F1F`` (track 1 discretionary
                data) whose value reads as track data (4 digits or more, or 12
                printable characters or more), see :func:`_track1_discretionary`
``pin-block``   a card's clear ISO 9564 format-0 PIN block, and the same
                block encrypted under every known PIN key; raw or hex
``tmk``         a terminal master key, raw or hex (either case)
``working-key`` a PIN or MAC key issued at a sign-on, raw or hex (either case)
``issuer-key``  an issuer chip master key (world ``[issuer]``, or unsealed from a
                host store), raw or hex (either case)
``icc-key``     a chip card's ICC master key (from a simulated card file), raw or hex
``pin``         a known PIN where it reads as a PIN: ``"pin": "123456"``,
                ``pin=123456``, ``PIN: 123456``, ``--pin 123456`` -- never a
                PIN's digits inside unrelated numbers
==============  ==============================================================

World files themselves are the secrets' source: a ``.toml`` file with
``[[cards]]`` or ``[[terminals]]`` tables is read for secrets and not
reported. So is a simulated chip card file (``clearpos admin cards
personalise``): it is the card itself, PAN and keys included, as a physical
card is; its PAN, track 2 and ICC keys found anywhere else are leaks (so is its
``.toml.tmp``, left behind when a process is killed while saving it). Chip data
holds the PAN (tag 5A), track 2 (tag 57) and track 1 discretionary data (tag
9F1F); the tags of :data:`clearpos.wire.tlv.CARD_DATA_TAGS` are never logged,
shown or exported, so any of these three found is a leak. A hit names the file,
the byte offset and the secret, masked.

Many patterns, large files: every pattern of 15 bytes or more is indexed by its
8-byte substrings, every other one of 7 bytes or more by its 4-byte substrings; a
file is read as 64-bit words at offsets 0, 8, 16, ... and as 32-bit words at
offsets 0, 4, 8, ... (one C-level set intersection each), and since any occurrence
of such a pattern covers an aligned word of its size, only the patterns whose words
occur are then searched for with ``bytes.find`` (a pattern is indexed by the
substrings at a window of consecutive offsets as many as its word's bytes, one of
which any occurrence covers aligned: see :func:`_window`). Shorter patterns are searched for
directly. (4-byte words alone would not do: 4 digits or 4 hex digits are so few
words that the PANs and the hex forms of keys and PIN blocks all but cover them,
and any number or hex text in a file made nearly every pattern a candidate.)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import sys
import tomllib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from clearpos.keys import KeyEncryptionKey, SealedKeyError
from clearpos.keys.crypto import PinEngine
from clearpos.store import files
from clearpos.wire.mask import find_pans, mask_pan

__all__ = ["Hit", "ScanResult", "Secrets", "clear_pin_block", "scan_bytes", "scan_paths"]

_SQLITE = b"SQLite format 3\x00"
_PIN_CONTEXT = re.compile(
    rb"""(?ix)
    (?: \bpin (?:_?code)? \b ["']? \s* [:=] \s* ["']?   # "pin": "1234", pin=1234, PIN: 1234
      | --pin (?: \s+ | = )                            # --pin 1234
    )
    (\d{4,12}) (?!\d)
    """
)
_TRACK1_DD = re.compile(rb"9f1f([0-7][0-9a-f])")  # searched in lower-cased data
_WORDS = (8, 4)  # bytes per indexed word, longest first
_CHUNK = 1 << 22  # bytes per intersection (a multiple of every word size)
_Index = tuple[list[tuple[int, dict[int, list[bytes]]]], list[bytes]]


def clear_pin_block(pin: str, pan: str) -> bytes:
    """ISO 9564 format 0: ``0L`` + PIN + ``F`` padding XOR ``0000`` + 12 PAN digits.

    >>> clear_pin_block("1234", "4000000000002016").hex().upper()
    '041234FFFFFFFDFE'
    """
    pin_field = bytes.fromhex(f"0{len(pin):X}{pin}".ljust(16, "F"))
    pan_field = bytes.fromhex("0000" + pan[-13:-1])
    return bytes(a ^ b for a, b in zip(pin_field, pan_field, strict=True))


def _bcd_forms(digits: str) -> list[bytes]:
    """``digits`` packed two per byte, starting on a high or on a low nibble.

    A form with fewer than 5 distinct bytes (a test number like 4000000000002016
    packs to ``40 00 00 00 00 00 20 16``) cannot be told from ordinary binary
    data, so it is left out; such a PAN is still found as ASCII digits.
    """
    out: list[bytes] = []
    for start in (0, 1):
        s = digits[start:]
        s = s[: len(s) // 2 * 2]
        if len(s) >= 14 and len(set(bytes.fromhex(s))) >= 5:
            out.append(bytes.fromhex(s))
    return out


def _tlv_forms(pan: str, expiry: str) -> list[tuple[bytes, str]]:
    """Tags 5A and 57 of a card as a chip carries them: tag, length byte, packed BCD.

    5A is the PAN, ``F``-padded to whole bytes. 57 is PAN ``D`` expiry, then a
    service code and discretionary data this scan does not know: so its value's
    known head is matched after every length byte it could have (up to 19).

    >>> [(f.hex().upper(), label) for f, label in _tlv_forms("6214830000000002144", "")]
    [('5A0A6214830000000002144F', 'tag 5A (PAN)')]
    """
    out = [
        (
            b"\x5a"
            + bytes([len(pan) // 2 + len(pan) % 2])
            + bytes.fromhex(pan + "F" * (len(pan) % 2)),
            "tag 5A (PAN)",
        )
    ]
    if len(expiry) == 4 and expiry.isdecimal():
        head = f"{pan}D{expiry}"
        known = bytes.fromhex(head[: len(head) // 2 * 2])
        for n in range(len(head) // 2 + len(head) % 2, 20):
            out.append((b"\x57" + bytes([n]) + known, "tag 57 (track 2 equivalent)"))
    return out


def _track1_discretionary(value: bytes) -> bool:
    """Whether a ``9F1F`` value reads as track 1 discretionary data (``ans``): digits
    only, 4 or more (CVV, PVV...), or 12 printable characters or more. Random bytes
    rarely do (a SQLite file holds ``9F 1F`` now and then)."""
    if len(value) >= 4 and value.isdigit():
        return True
    return len(value) >= 12 and all(0x20 <= b < 0x7F for b in value)


def _masked_key(key: bytes) -> str:
    h = key.hex().upper()
    return f"{h[:2]}…{h[-2:]} ({len(key)} bytes)"


@dataclass(frozen=True, order=True)
class Hit:
    """One secret found: where, and which (masked)."""

    path: str
    offset: int
    kind: str
    label: str

    def __str__(self) -> str:
        return f"{self.path}:{self.offset}: {self.kind} {self.label}"


@dataclass
class ScanResult:
    """Hits, and what was scanned."""

    hits: list[Hit] = field(default_factory=list)
    files: int = 0
    bytes: int = 0
    worlds: list[str] = field(default_factory=list)
    card_files: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        return {
            "hits": [str(h) for h in self.hits],
            "files": self.files,
            "bytes": self.bytes,
            "world_files_skipped": self.worlds,
            "card_files_skipped": self.card_files,
            "unreadable": self.unreadable,
        }


class Secrets:
    """The byte patterns to look for, each with its kind and masked label."""

    def __init__(self) -> None:
        self.raw: dict[bytes, tuple[str, str]] = {}
        self.folded: dict[bytes, tuple[str, str]] = {}  # lower-case hex text forms
        self.pins: dict[str, str] = {}
        self.pan_pins: list[tuple[str, str]] = []
        self.pin_keys: set[bytes] = set()
        self.pans: set[str] = set()
        self._index: _Index | None = None
        self._findex: _Index | None = None

    # -- adding secrets

    def _add(self, pattern: bytes, kind: str, label: str, *, hex_too: bool) -> None:
        self.raw.setdefault(pattern, (kind, label))
        if hex_too:
            self.folded.setdefault(pattern.hex().encode(), (kind, label + " as hex"))
        self._index = self._findex = None

    def add_card(self, pan: str, expiry: str = "", pin: str = "") -> None:
        """A card's PAN, track 2, PIN and clear PIN block (and under every known PIN key)."""
        if not (pan.isdecimal() and 12 <= len(pan) <= 19):
            return
        label = mask_pan(pan)
        self.pans.add(pan)
        self._add(pan.encode(), "pan", label, hex_too=False)
        for form in _bcd_forms(pan):
            self.raw.setdefault(form, ("pan", label + " as BCD"))
        if len(expiry) == 4 and expiry.isdecimal():
            for sep in ("=", "D", "d"):
                self.raw.setdefault(
                    f"{pan}{sep}{expiry}".encode(), ("track2", f"{label}{sep}{expiry}")
                )
            for form in _bcd_forms(f"{pan}D{expiry}"):
                self.raw.setdefault(form, ("track2", f"{label} track 2 as BCD"))
        for form, what in _tlv_forms(pan, expiry):
            self._add(form, "chip-data", f"{what} of {label}", hex_too=True)
        if pin.isdecimal() and 4 <= len(pin) <= 12:
            self.pins[pin] = f"PIN of {label} ({'*' * len(pin)})"
            self._add(clear_pin_block(pin, pan), "pin-block", f"clear, {label}", hex_too=True)
            if (pan, pin) not in self.pan_pins:  # a card seen again (in many world files)
                self.pan_pins.append((pan, pin))  # has its blocks under every key already
                for key in self.pin_keys:
                    self._add_encrypted_block(key, pan, pin)
        self._index = self._findex = None

    def _add_encrypted_block(self, pik: bytes, pan: str, pin: str) -> None:
        block = PinEngine(pik).encrypt(pin, pan)
        self._add(block, "pin-block", f"encrypted, {mask_pan(pan)}", hex_too=True)

    def add_key(self, key: bytes, kind: str, whose: str) -> None:
        """A clear key (``tmk`` or ``working-key``), raw and as hex."""
        if len(key) < 8:
            return
        self._add(key, kind, f"{whose} {_masked_key(key)}", hex_too=True)

    def add_working_keys(self, keys: Iterable[bytes], whose: str = "issued at a sign-on") -> None:
        """Working keys: 16-byte ones may be PIN keys, so the cards' blocks under them count too."""
        for key in keys:
            if key in self.raw:
                continue
            self.add_key(key, "working-key", whose)
            if len(key) == 16:
                self.pin_keys.add(key)
                for pan, pin in self.pan_pins:
                    with contextlib.suppress(ValueError):
                        self._add_encrypted_block(key, pan, pin)

    def add_world_data(self, data: dict[str, object]) -> None:
        """Secrets from a parsed world file (lenient: whatever entries look right)."""
        for entry in _tables(data, "cards"):
            self.add_card(str(entry.get("pan", "")), str(entry.get("expiry", "")),
                          str(entry.get("pin", "")))  # fmt: skip
        for entry in _tables(data, "terminals"):
            tmk = str(entry.get("tmk", ""))
            with contextlib.suppress(ValueError):
                key = bytes.fromhex(tmk)
                if len(key) in (8, 16, 24):
                    self.add_key(key, "tmk", f"TMK of {entry.get('tid', '?')}")
        issuer = data.get("issuer")
        if isinstance(issuer, dict):
            for name in ("imk_ac", "imk_smi", "imk_smc"):
                with contextlib.suppress(ValueError):
                    self.add_key(bytes.fromhex(str(issuer.get(name, ""))), "issuer-key", name)

    def add_card_file(self, path: Path) -> None:
        """Secrets of a simulated chip card file: its PAN, track 2 and ICC master keys."""
        with contextlib.suppress(OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
            data = tomllib.loads(path.read_text("utf-8"))
            pan = str(data.get("pan", ""))
            self.add_card(pan, str(data.get("expiry", "")))
            for name in ("icc_mk_ac", "icc_mk_smi", "icc_mk_smc"):
                with contextlib.suppress(ValueError):
                    key = bytes.fromhex(str(data.get(name, "")))
                    self.add_key(key, "icc-key", f"{name} of {mask_pan(pan)}")

    def add_world(self, path: Path) -> None:
        """Secrets of one world file."""
        with contextlib.suppress(OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
            self.add_world_data(tomllib.loads(path.read_text("utf-8")))

    @classmethod
    def from_world_text(cls, text: str) -> Secrets:
        s = cls()
        s.add_world_data(tomllib.loads(text))
        return s

    def add_sealed_stores(self, root: Path, keks: Iterable[KeyEncryptionKey]) -> int:
        """Unseal every key in terminal state and host stores under ``root``; returns how many."""
        keks = list(keks)
        found = 0
        for path in _files([root]):
            try:
                with open(path, "rb") as fh:
                    if fh.read(16) != _SQLITE:
                        continue
            except OSError:
                continue
            for name, context, sealed in files.sealed_keys(path):
                for kek in keks:
                    try:
                        key = kek.open(sealed, context)
                    except SealedKeyError:
                        continue
                    found += 1
                    if name == "tmk":
                        self.add_key(key, "tmk", f"TMK ({context})")
                    elif name.startswith("imk_"):
                        self.add_key(key, "issuer-key", f"{name} ({context})")
                    else:
                        self.add_working_keys([key], f"{name} ({context})")
                    break
        return found

    def add_lab_runs(self, root: Path) -> int:
        """For every fault-lab output under ``root`` (its ``lab.json``): its world and KEK."""
        from .campaign import lab_kek, lab_world

        runs = 0
        for path in _files([root]):
            if path.name != "lab.json":
                continue
            try:
                doc = json.loads(path.read_text("utf-8"))
                seed, terminals, cards = int(doc["seed"]), int(doc["terminals"]), int(doc["cards"])
            except (OSError, ValueError, KeyError, TypeError):
                continue
            self.add_world_data(tomllib.loads(lab_world(seed, terminals, cards).toml))
            self.add_sealed_stores(path.parent, [lab_kek(seed)])
            runs += 1
        return runs

    # -- searching

    def _built(self, folded: bool) -> _Index:
        cached = self._findex if folded else self._index
        if cached is not None:
            return cached
        patterns = self.folded if folded else self.raw
        indexes: list[tuple[int, dict[int, list[bytes]]]] = [(w, {}) for w in _WORDS]
        short: list[bytes] = []
        for p in patterns:
            for word, index in indexes:  # the longest word an occurrence must cover
                if len(p) >= 2 * word - 1:
                    for i in _window(p, word):
                        w = int.from_bytes(p[i : i + word], sys.byteorder)
                        index.setdefault(w, []).append(p)
                    break
            else:
                short.append(p)
        built = ([x for x in indexes if x[1]], short)
        if folded:
            self._findex = built
        else:
            self._index = built
        return built

    def find(self, data: bytes) -> Iterator[tuple[int, int, str, str]]:
        """(offset, length, kind, label) of every secret in ``data``, overlaps included."""
        for folded in (False, True):
            hay = data.lower() if folded else data
            patterns = self.folded if folded else self.raw
            indexes, short = self._built(folded)
            candidates: set[bytes] = set(short)
            for word, index in indexes:
                words = index.keys()  # not set(index): a copy of the index per file
                view = memoryview(hay)
                usable = len(hay) // word * word
                for start in range(0, usable, _CHUNK):
                    chunk = view[start : min(usable, start + _CHUNK)].cast(
                        "Q" if word == 8 else "I"
                    )
                    for w in words & chunk:
                        candidates.update(index[w])
                view.release()
            for p in candidates:
                at = hay.find(p)
                while at >= 0:
                    kind, label = patterns[p]
                    yield at, len(p), kind, label
                    at = hay.find(p, at + 1)
        for m in _PIN_CONTEXT.finditer(data):
            pin_label = self.pins.get(m.group(1).decode())
            if pin_label is not None:
                yield m.start(1), len(m.group(1)), "pin", pin_label
        yield from self._written_pans(data)
        yield from _track1_tags(data)

    def _written_pans(self, data: bytes) -> Iterator[tuple[int, int, str, str]]:
        """Known PANs as people write them (``6222 0212 3456 7890 123``, with dashes or
        dots, track data after them): the masking's own detector, asked about this
        data's cards. One-piece PANs are found above, as byte patterns."""
        if not self.pans:
            return
        text = data.decode("latin-1")  # one character per byte: offsets stay byte offsets
        for m in find_pans(text, lambda digits, separated: separated and digits in self.pans):
            kind = "track2" if m.track else "pan"
            yield m.start, m.end - m.start, kind, f"{mask_pan(m.pan)} written in groups"


def _track1_tags(data: bytes) -> Iterator[tuple[int, int, str, str]]:
    """Tag 9F1F (track 1 discretionary data) with a value that reads as track data,
    raw (tag, length, value) or as hex (either case)."""
    at = data.find(b"\x9f\x1f")
    while at >= 0:
        n = data[at + 2] if at + 2 < len(data) else 0
        value = data[at + 3 : at + 3 + n]
        if 0 < n < 0x80 and len(value) == n and _track1_discretionary(value):
            yield at, 3 + n, "chip-data", f"tag 9F1F (track 1 discretionary data, {n} bytes)"
        at = data.find(b"\x9f\x1f", at + 1)
    for m in _TRACK1_DD.finditer(data.lower()):
        n = int(m.group(1), 16)
        text = data[m.end() : m.end() + 2 * n]
        try:
            value = bytes.fromhex(text.decode("ascii"))
        except ValueError:
            continue
        if n and len(value) == n and _track1_discretionary(value):
            yield (m.start(), 6 + 2 * n, "chip-data",
                   f"tag 9F1F (track 1 discretionary data, {n} bytes) as hex")  # fmt: skip


def _window(p: bytes, word: int) -> range:
    """Offsets of the ``word`` consecutive substrings of ``p`` to index it by.

    An occurrence of ``p`` covers an aligned word at exactly one of any ``word``
    consecutive offsets, so these suffice; of the windows that fit, the one whose
    substrings repeat bytes the least (runs of zeros or of one digit are in every
    store and number: a pattern indexed by them would be searched for in nearly
    every file).

    >>> _window(b"6225880000001116", 4)
    range(0, 4)
    >>> _window(bytes(8) + b"\\x12\\x34\\x56\\x78\\x9a\\xbc\\xde", 4)
    range(7, 11)
    """
    best = min(
        range(len(p) - 2 * word + 2),
        key=lambda j: sum(word - len(set(p[i : i + word])) for i in range(j, j + word)),
    )
    return range(best, best + word)


def _tables(data: dict[str, object], name: str) -> list[dict[str, object]]:
    value = data.get(name)
    if not isinstance(value, list):
        return []
    return [e for e in value if isinstance(e, dict)]


def _files(paths: Iterable[Path]) -> Iterator[Path]:
    for p in paths:
        if p.is_file():
            yield p
        elif p.is_dir():
            for q in sorted(p.rglob("*")):
                if q.is_file() and not q.is_symlink():
                    yield q


def _is_world(path: Path, head: bytes) -> bool:
    return path.suffix == ".toml" and (b"[[cards]]" in head or b"[[terminals]]" in head)


def _is_card_file(path: Path, head: bytes) -> bool:
    return (
        path.name.endswith((".toml", ".toml.tmp"))
        and b"\nicc_mk_ac = " in head
        and b"\npan = " in head
    )


def scan_bytes(data: bytes, secrets: Secrets, name: str = "<data>") -> list[Hit]:
    """Hits in one buffer; a hit inside a longer hit (a PAN inside its track 2) is dropped."""
    found = sorted(secrets.find(data), key=lambda h: (h[0], -h[1]))
    hits: list[Hit] = []
    end = -1
    for offset, length, kind, label in found:
        if offset + length <= end:
            continue
        hits.append(Hit(name, offset, kind, label))
        end = max(end, offset + length)
    return hits


def scan_paths(paths: Iterable[Path], secrets: Secrets, *, skip: Iterable[Path] = ()) -> ScanResult:
    """Scan every file under ``paths`` (world files add secrets and are skipped)."""
    files = list(_files(paths))
    skipped = {p.resolve() for p in skip}
    result = ScanResult()
    todo: list[Path] = []
    for f in files:
        if f.resolve() in skipped:
            continue
        try:
            with open(f, "rb") as fh:
                head = fh.read(1 << 16)
        except OSError:
            result.unreadable.append(str(f))
            continue
        if _is_world(f, head):
            secrets.add_world(f)
            result.worlds.append(str(f))
            continue
        if _is_card_file(f, head):
            secrets.add_card_file(f)
            result.card_files.append(str(f))
            continue
        todo.append(f)
    for f in todo:
        try:
            data = f.read_bytes()
        except OSError:
            result.unreadable.append(str(f))
            continue
        result.files += 1
        result.bytes += len(data)
        result.hits.extend(scan_bytes(data, secrets, str(f)))
    return result


# ---------------------------------------------------------------------------- command line


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", type=Path, help="files or directories to scan")
    p.add_argument(
        "--world",
        type=Path,
        action="append",
        default=[],
        help="world file with the secrets (default: the demo world); repeatable",
    )
    p.add_argument(
        "--kek",
        action="append",
        default=[],
        metavar="HEX",
        help="a KEK (64 hex) that unseals the stores found, to learn their working keys",
    )
    p.add_argument(
        "--lab-seed",
        type=int,
        action="append",
        default=[],
        help="add the lab world (up to 64 terminals) and the lab KEK of this fault-lab seed",
    )
    p.add_argument(
        "--lab-cards",
        type=int,
        default=24,
        help="generated cards of those lab worlds (default 24, as clearpos lab run)",
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from .campaign import DEMO_WORLD, lab_kek, lab_world

    secrets = Secrets()
    for w in args.world or [DEMO_WORLD]:
        secrets.add_world(w)
    keks: list[KeyEncryptionKey] = []
    for text in args.kek:
        try:
            keks.append(KeyEncryptionKey(bytes.fromhex(text)))
        except ValueError:
            print("clearpos lab scan: --kek must be 64 hex digits", file=sys.stderr)
            return 2
    for seed in args.lab_seed:
        secrets.add_world_data(tomllib.loads(lab_world(seed, 64, args.lab_cards).toml))
        keks.append(lab_kek(seed))
    for p in args.paths:
        secrets.add_lab_runs(p)
        secrets.add_sealed_stores(p, keks)
    result = scan_paths(args.paths, secrets)
    if args.json:
        print(json.dumps(result.to_json(), ensure_ascii=False))
    else:
        for h in result.hits:
            print(h)
        print(
            f"leak scan: {len(result.hits)} hits in {result.files} files "
            f"({result.bytes} bytes; {len(result.worlds)} world files read for secrets)"
        )
    return 1 if result.hits else 0
