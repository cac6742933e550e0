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
import zlib
from collections import Counter, defaultdict
from pathlib import Path
from typing import NamedTuple

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")
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
    a final terminator starts no line); None when the file cannot be read (a broken or fake .gz)."""
    if name.endswith(".gz"):
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
    """A parsed JSON object that remembers its keys in order, repeats included."""

    keys_in_order: list[str]


def _object(pairs: list[tuple[str, object]]) -> _Object:
    found = _Object(pairs)
    found.keys_in_order = [key for key, _ in pairs]
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


def compute(root: Path, policy: str, key: bytes) -> dict[str, object]:
    """Row counts of every table and the machine-learning rows as a Counter of tuples."""
    customers, customer_rejects = _parse(root, "customer")
    phone, phone_rejects = _parse(root, "accelerometer")
    steps, step_rejects = _parse(root, "step_trainer")

    current: dict[str, dict] = {}
    for c in customers:
        best = current.get(c["email"])
        if best is None or (c["lastUpdateDate"], c["registrationDate"]) > (
            best["lastUpdateDate"],
            best["registrationDate"],
        ):
            current[c["email"]] = c
    trusted = {e: c for e, c in current.items() if c.get("shareWithResearchAsOfDate") is not None}

    def allowed(time: int, consent: int) -> bool:
        return policy == "flag" or time >= consent

    phone_rows = {(p["user"], p["timestamp"], float(p["x"]), float(p["y"]), float(p["z"])) for p in phone}
    phone_trusted = {
        row for row in phone_rows if row[0] in trusted and allowed(row[1], trusted[row[0]]["shareWithResearchAsOfDate"])
    }
    curated = {e: c for e, c in trusted.items() if any(row[0] == e for row in phone_trusted)}

    claims = Counter(c["serialNumber"] for c in current.values())
    owner = {c["serialNumber"]: e for e, c in curated.items()}
    step_rows = {(s["sensorReadingTime"], s["serialNumber"], s["distanceFromObject"]) for s in steps}
    ambiguous = {row for row in step_rows if claims[row[1]] > 1}
    step_trusted = {
        row
        for row in step_rows - ambiguous
        if row[1] in owner and allowed(row[0], curated[owner[row[1]]]["shareWithResearchAsOfDate"])
    }

    by_user_time: dict[tuple[str, int], list[tuple[float, float, float]]] = defaultdict(list)
    for user, time, x, y, z in phone_trusted:
        by_user_time[(user, time)].append((x, y, z))
    ml: Counter = Counter()
    for time, serial, distance in step_trusted:
        email = owner[serial]
        subject = hmac.new(key, email.encode(), hashlib.sha256).hexdigest()
        for x, y, z in by_user_time.get((email, time), []):
            ml[(time, distance, x, y, z, subject)] += 1

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
    }
