"""An independent, plain-Python computation of the zone tables from the raw landing files.

It shares no code with the pipeline (only the rules as the README states them), so a graph test can hold
the Spark results to it row for row. Fine for the small lakes tests generate; not for benchmarks.
"""

from __future__ import annotations

import gzip
import hashlib
import hmac
import json
import re
import time
import zlib
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

# White and zero-width space around an e-mail does not change whose it is (Unicode White_Space, ZWSP, ZWNJ,
# ZWJ, WORD JOINER, BOM); written out here on its own, not taken from the pipeline.
SPACE = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680"
    + "".join(map(chr, range(0x2000, 0x200E)))
    + "\u2028\u2029\u202f\u205f\u2060\u3000\ufeff"
)
_SPACE_CLASS = "[" + "".join(re.escape(c) for c in SPACE) + "]"
EMAIL = re.compile(rf"^{_SPACE_CLASS}*[^@\s]+@[^@\s]+{_SPACE_CLASS}*$")
UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
MS_RANGE = range(946_684_800_000, 4_102_444_800_000 + 1)


DATE = re.compile(r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$", re.ASCII)
PHONE = re.compile(r"^\+?\d{7,15}$", re.ASCII)
NAME = re.compile(r"^\s*\S", re.ASCII)
LONG = range(-(2**63), 2**63)
INT = range(-(2**31), 2**31)
GZIP_MAGIC = b"\x1f\x8b"


class Column(NamedTuple):
    """A field of a feed as the README states its rules: JSON type, presence, value checks (name, test)."""

    name: str
    kind: str  # "text", "long", "int" or "double"
    required: bool = True  # False: descriptive (kept as delivered, failures only counted)
    nullable: bool = False
    checks: tuple = ()


def _ms(name: str, required: bool = True, nullable: bool = False) -> Column:
    return Column(
        name,
        "long",
        required,
        nullable,
        (
            ("greater_than_or_equal_to", lambda v: v >= MS_RANGE.start),
            ("less_than_or_equal_to", lambda v: v < MS_RANGE.stop),
        ),
    )


def _acceleration(name: str) -> Column:
    return Column(
        name,
        "double",
        checks=(("greater_than_or_equal_to", lambda v: v >= -1000), ("less_than_or_equal_to", lambda v: v <= 1000)),
    )


def _matches(pattern: re.Pattern) -> tuple:
    return (("str_matches", lambda v: bool(pattern.match(v))),)


FEED_COLUMNS = {
    "customer": (
        Column("customerName", "text", False, True, _matches(NAME)),
        Column("email", "text", checks=_matches(EMAIL)),
        Column("phone", "text", False, True, _matches(PHONE)),
        Column("birthDay", "text", False, True, _matches(DATE)),
        Column("serialNumber", "text", checks=_matches(UUID)),
        _ms("registrationDate"),
        _ms("lastUpdateDate"),
        _ms("shareWithResearchAsOfDate", nullable=True),
        _ms("shareWithPublicAsOfDate", required=False, nullable=True),
        _ms("shareWithFriendsAsOfDate", required=False, nullable=True),
    ),
    "accelerometer": (
        Column("user", "text", checks=_matches(EMAIL)),
        _ms("timestamp"),
        _acceleration("x"),
        _acceleration("y"),
        _acceleration("z"),
    ),
    "step_trainer": (
        _ms("sensorReadingTime"),
        Column("serialNumber", "text", checks=_matches(UUID)),
        Column("distanceFromObject", "int", checks=(("greater_than_or_equal_to", lambda v: v >= 0),)),
    ),
}
LINEAGE = ("source_file", "line_number", "arrived_at")


def _files(root: Path, feed: str) -> list[Path]:
    folder = root / feed / "landing"
    return [
        path
        for path in sorted(folder.rglob("*"))
        if path.is_file() and not any(part.startswith(("_", ".")) for part in path.relative_to(folder).parts)
    ]


def file_lines(data: bytes, name: str) -> list[str] | None:
    """A file's lines as delivered (a .gz decompressed), split where Hadoop splits them (LF, CRLF, lone CR;
    a final terminator starts no line); None when the file cannot be read (a broken or fake .gz) or is not read
    (compressed with another codec Spark picks by the name: .bz2, .zst, ...; suffixes count in any case)."""
    if name.lower().endswith((".bz2", ".deflate", ".zst", ".lz4", ".snappy")):
        return None
    if name.lower().endswith(".gz"):
        if not data.startswith(GZIP_MAGIC):
            return None
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error):
            return None
    text = data.decode("utf-8", errors="replace")
    if not text:
        return []
    lines = re.split(r"\r\n|\r|\n", text)
    return lines[:-1] if re.search(r"(\r\n|\r|\n)$", text) else lines


def _lines(root: Path, feed: str) -> list[str]:
    """Every line of every readable landing file of a feed, files in name order."""
    return [line for path in _files(root, feed) for line in file_lines(path.read_bytes(), path.name) or []]


class _Object(dict):
    """A parsed JSON object that remembers its keys and values in order, repeats included."""

    pairs: list[tuple[str, object]]

    @property
    def keys_in_order(self) -> list[str]:
        return [key for key, _ in self.pairs]

    def given(self, name: str) -> list[object]:
        """Every value the object gives a key spelled `name` in any case, in order."""
        return [value for key, value in self.pairs if key.lower() == name.lower()]


def _object(pairs: list[tuple[str, object]]) -> _Object:
    found = _Object(pairs)
    found.pairs = pairs
    return found


def _holds_only_valid_text(value: object, top: bool = False) -> bool:
    """No unpaired surrogate in any text, and no repeated key in a nested object (Spark's VARIANT holds neither)."""
    if isinstance(value, str):
        return not any("\ud800" <= ch <= "\udfff" for ch in value)
    if isinstance(value, list):
        return all(_holds_only_valid_text(v) for v in value)
    if isinstance(value, _Object):
        keys = value.keys_in_order
        if not top and len(set(keys)) != len(keys):
            return False
        return all(_holds_only_valid_text(k) for k in keys) and all(_holds_only_valid_text(v) for v in value.values())
    return True


def _json_kind_fits(value: object, kind: str) -> bool:
    if kind == "text":
        return isinstance(value, str)
    if isinstance(value, bool):
        return False
    if kind in ("long", "int"):
        return isinstance(value, int) and value in (LONG if kind == "long" else INT)
    return isinstance(value, int | float)  # double: any JSON number


def _as_double(value: int | float) -> float:
    try:
        return float(value)
    except OverflowError:  # an integer beyond any double: Spark reads it as an infinity
        return float("inf") if value > 0 else float("-inf")


def _refuse_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def classify(line: str, feed: str) -> tuple[str | None, str | None, dict | None, list[str]]:
    """(reason, detail, record, descriptive failures) of one landing line, by the README's rules alone.

    `record` holds the feed's columns (keys matched case-insensitively) for a kept line, else None."""
    text = line.removeprefix("\ufeff")
    if not text.strip(" \t"):
        return "blank_line", None, None, []
    try:
        parsed = json.loads(text, object_pairs_hook=_object, parse_constant=_refuse_constant)
    except (ValueError, RecursionError):
        return "not_json", None, None, []
    if not isinstance(parsed, _Object) or not _holds_only_valid_text(parsed, top=True):
        return "not_json", None, None, []
    columns = FEED_COLUMNS[feed]
    by_lower = {c.name.lower(): c.name for c in columns} | {name.lower(): name for name in LINEAGE}
    seen: set[str] = set()
    for key in parsed.keys_in_order:
        if key.lower() in seen:
            return "duplicate_key", by_lower.get(key.lower(), key), None, []
        seen.add(key.lower())
    values = {key.lower(): value for key, value in parsed.items()}
    record, failures, reasons = {}, [], {"missing_field": [], "wrong_type": [], "invalid_value": []}
    for c in columns:
        value = values.get(c.name.lower())
        if value is None:
            record[c.name] = None
            if not c.nullable:
                (reasons["missing_field"].append(c.name) if c.required else failures.append(f"{c.name}:not_nullable"))
            continue
        if not _json_kind_fits(value, c.kind):
            if c.required:
                reasons["wrong_type"].append(c.name)
            else:
                failures.append(f"{c.name}:wrong_type")
                record[c.name] = (
                    json.dumps(value, separators=(",", ":"), ensure_ascii=False) if c.kind == "text" else None
                )
            continue
        record[c.name] = _as_double(value) if c.kind == "double" else value
        for check, passes in c.checks:
            if not passes(record[c.name]):
                (
                    reasons["invalid_value"].append(f"{c.name}:{check}")
                    if c.required
                    else failures.append(f"{c.name}:{check}")
                )
    for reason, details in reasons.items():
        if details:
            return reason, details[0], None, []
    return None, None, record, failures


def file_faults(root: Path, feed: str) -> list[Path]:
    """The landing files of a feed that cannot be read at all (each one quarantine row)."""
    return [path for path in _files(root, feed) if file_lines(path.read_bytes(), path.name) is None]


def _parse(root: Path, feed: str) -> tuple[list[dict], int]:
    """Valid records of a feed and the number of quarantined rows: rejected non-blank lines, unreadable files."""
    records, rejected = [], len(file_faults(root, feed))
    for line in _lines(root, feed):
        reason, _, record, _ = classify(line, feed)
        if record is not None:
            records.append(record)
        elif reason != "blank_line":
            rejected += 1
    return records, rejected


def descriptive_failures(root: Path, feed: str) -> Counter:
    """Kept rows of a feed failing each descriptive rule."""
    return Counter(rule for line in _lines(root, feed) for rule in classify(line, feed)[3])


def compute(root: Path, policy: str, key: bytes, as_of: int | None = None) -> dict[str, object]:
    """Row counts of every table and the machine-learning rows as a Counter of tuples.

    `as_of` is the run's time (epoch ms; default now): research consent dated after it is not consent yet.
    """
    as_of = int(time.time() * 1000) if as_of is None else as_of
    customers, customer_rejects = _parse(root, "customer")
    phone, phone_rejects = _parse(root, "accelerometer")
    steps, step_rejects = _parse(root, "step_trainer")

    history = _customer_history(root)
    newest: dict[str, _Delivered] = {}
    for identity, records in history.items():
        newest[identity] = max(records, key=_recency(records))
    trusted = {
        identity: record
        for identity, record in newest.items()
        if record.accepted and record.consent is not None and record.consent <= as_of
    }

    def allowed(reading_time: int, consent: int) -> bool:
        return policy == "flag" or reading_time >= consent

    # Readings of one customer that differ only in how `user` is spelled are one reading.
    phone_rows = {(_identity(p["user"]), p["timestamp"], float(p["x"]), float(p["y"]), float(p["z"])) for p in phone}
    phone_trusted = {row for row in phone_rows if row[0] in trusted and allowed(row[1], trusted[row[0]].consent)}
    curated = {identity: c for identity, c in trusted.items() if any(row[0] == identity for row in phone_trusted)}

    claims = _claims(history)
    step_rows = {(s["sensorReadingTime"], s["serialNumber"], s["distanceFromObject"]) for s in steps}
    ambiguous, step_trusted = set(), {}
    for row in step_rows:
        reading_time, serial, _ = row
        holders = _holders(claims.get(serial, []), reading_time)
        if len(holders) > 1:
            ambiguous.add(row)
        elif len(holders) == 1:
            (owner,) = holders
            if owner in curated and allowed(reading_time, curated[owner].consent):
                step_trusted[row] = owner

    by_owner_time: dict[tuple[str, int], list[tuple[float, float, float]]] = defaultdict(list)
    for identity, reading_time, x, y, z in phone_trusted:
        by_owner_time[(identity, reading_time)].append((x, y, z))
    ml: Counter = Counter()
    for (reading_time, _, distance), owner in step_trusted.items():
        subject = hmac.new(key, owner.encode(), hashlib.sha256).hexdigest()
        for x, y, z in by_owner_time.get((owner, reading_time), []):
            ml[(reading_time, distance, x, y, z, subject)] += 1

    return {
        "counts": {
            "customer_landing": len(customers),
            "accelerometer_landing": len(phone),
            "step_trainer_landing": len(steps),
            "customer_landing_quarantine": customer_rejects,
            "accelerometer_landing_quarantine": phone_rejects,
            "step_trainer_landing_quarantine": step_rejects,
            "customer_trusted": len(trusted),
            "accelerometer_trusted": len(phone_trusted),
            "customer_curated": len(curated),
            "step_trainer_trusted": len(step_trusted),
            "step_trainer_trusted_quarantine": len(ambiguous),
            "machine_learning_curated": sum(ml.values()),
        },
        "machine_learning_rows": ml,
        "customer_trusted_emails": sorted(r.email for r in trusted.values()),
    }


CUSTOMER_FIELDS = (
    "customerName",
    "email",
    "phone",
    "birthDay",
    "serialNumber",
    "registrationDate",
    "lastUpdateDate",
    "shareWithResearchAsOfDate",
    "shareWithPublicAsOfDate",
    "shareWithFriendsAsOfDate",
)


class _Delivered(NamedTuple):
    """One customer record as delivered: accepted, or quarantined with a readable e-mail (never consenting)."""

    email: str
    time: int  # lastUpdateDate; quarantined and unreadable: the file's arrival
    registered: int  # registrationDate; quarantined and unreadable: `time`
    arrived: int  # the file's modification time, epoch ms
    file: str  # the file's path under the feed's folder
    line: int
    consent: int | None
    serial: str | None
    accepted: bool


def _identity(email: str) -> str:
    # Only A-Z change case: 'İ' or the Kelvin sign stay as delivered (two spellings, two customers).
    return "".join(chr(ord(c) + 32) if "A" <= c <= "Z" else c for c in email.strip(SPACE))


def _ms(value: object) -> int | None:
    """An epoch-ms value the landing parser reads as one: an integer (or integer text) in the plausible range."""
    if isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
        value = int(value)
    return value if isinstance(value, int) and not isinstance(value, bool) and value in MS_RANGE else None


def _customer_history(root: Path) -> dict[str, list[_Delivered]]:
    """Every customer's delivered records by identity, exact re-deliveries dropped (the first arrival counts)."""
    lines = []
    folder = root / "customer" / "landing"
    for path in _files(root, "customer"):
        texts = file_lines(path.read_bytes(), path.name)
        if texts is None:  # a file that cannot be read is quarantined whole: it holds no record
            continue
        arrived = path.stat().st_mtime_ns // 1_000_000
        name = str(path.relative_to(folder))
        lines += [(arrived, name, n, text) for n, text in enumerate(texts, start=1)]
    history: dict[str, list[_Delivered]] = defaultdict(list)
    seen: set = set()
    for arrived, name, n, text in sorted(lines):
        reason, _, kept, _ = classify(text, "customer")
        if reason == "blank_line":
            continue
        if kept is not None:
            delivered = _Delivered(
                kept["email"], kept["lastUpdateDate"], kept["registrationDate"], arrived, name, n,
                kept.get("shareWithResearchAsOfDate"), kept["serialNumber"], True,
            )  # fmt: skip
            copies = [(_identity(kept["email"]), tuple(kept.get(f) for f in CUSTOMER_FIELDS), delivered)]
        else:
            copies = [(_identity(d.email), text, d) for d in _quarantined_records(text, arrived, name, n)]
        for identity, copy, delivered in copies:
            if identity and (identity, copy) not in seen:
                seen.add((identity, copy))
                history[identity].append(delivered)
    return history


def _quarantined_records(text: str, arrived: int, name: str, n: int) -> list[_Delivered]:
    """A quarantined customer line as records that never consent: one per e-mail it gives (keys in any case, each
    time given) when it is one JSON object; its times the latest plausible ones it gives, else its arrival."""
    try:
        parsed = json.loads(text.removeprefix("\ufeff"), object_pairs_hook=_object, parse_constant=_refuse_constant)
    except (ValueError, RecursionError):
        return []
    if not isinstance(parsed, _Object):
        return []

    def latest(field: str, default: int) -> int:
        return max((ms for value in parsed.given(field) if (ms := _ms(value)) is not None), default=default)

    when = latest("lastUpdateDate", arrived)
    registered = latest("registrationDate", when)
    emails = dict.fromkeys(value for value in parsed.given("email") if isinstance(value, str))
    return [_Delivered(email, when, registered, arrived, name, n, None, None, False) for email in emails]


def _recency(records: list[_Delivered]) -> Callable[[_Delivered], tuple]:
    """A sort key, greatest = newest: update time, registration, arrival; on equal arrival the last line of its
    file, then the record without consent, then file name and line."""
    last_line: dict[tuple, int] = {}
    for r in records:
        group = (r.time, r.registered, r.arrived, r.file)
        last_line[group] = max(last_line.get(group, 0), r.line)

    def key(r: _Delivered) -> tuple:
        last = last_line[(r.time, r.registered, r.arrived, r.file)] == r.line
        return (r.time, r.registered, r.arrived, last, r.consent is None, r.file, r.line)

    return key


def _claims(history: dict[str, list[_Delivered]]) -> dict[str, list[tuple[str, int, int | None]]]:
    """serial -> (identity, from, until): each accepted record holds its serial from its update time (a customer's
    oldest record: from registration) until the customer's next accepted record."""
    claims: dict[str, list[tuple[str, int, int | None]]] = defaultdict(list)
    for identity, records in history.items():
        accepted = [r for r in records if r.accepted]
        accepted.sort(key=_recency(accepted))
        for i, r in enumerate(accepted):
            since = r.registered if i == 0 else r.time
            until = accepted[i + 1].time if i + 1 < len(accepted) else None
            claims[r.serial].append((identity, since, until))
    return claims


def _holders(claims: list[tuple[str, int, int | None]], reading_time: int) -> set[str]:
    """Who held a device at a reading's time: the claims that hold it then; before its first claim, the customers
    of that first claim (its first known holders). A claim from a time until the same or an earlier time holds
    nothing, not even as a first claim."""
    held = [(identity, since, until) for identity, since, until in claims if until is None or since < until]
    if not held:
        return set()
    first = min(since for _, since, _ in held)
    if reading_time < first:
        return {identity for identity, since, _ in held if since == first}
    return {
        identity for identity, since, until in held if since <= reading_time and (until is None or reading_time < until)
    }
