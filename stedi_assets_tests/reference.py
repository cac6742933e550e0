"""An independent, plain-Python computation of the zone tables from the raw landing files.

It shares no code with the pipeline (only the rules as the README states them), so a graph test can hold
the Spark results to it row for row. Fine for the small lakes tests generate; not for benchmarks.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
import time
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


def _lines(root: Path, feed: str) -> list[str]:
    lines = []
    for path in sorted((root / feed / "landing").rglob("*")):
        if path.is_file() and not path.name.startswith(("_", ".")):
            lines += path.read_text().splitlines()
    return lines


def _is_ms(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v in MS_RANGE


def _is_acceleration(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and abs(v) <= 1000


def _valid_customer(r: dict) -> bool:
    return (
        isinstance(r.get("customerName"), str)
        and isinstance(r.get("email"), str)
        and bool(EMAIL.match(r["email"]))
        and isinstance(r.get("serialNumber"), str)
        and bool(UUID.match(r["serialNumber"]))
        and _is_ms(r.get("registrationDate"))
        and _is_ms(r.get("lastUpdateDate"))
        and all(r.get(k) is None or _is_ms(r[k]) for k in ("shareWithResearchAsOfDate",))
    )


def _parse(root: Path, feed: str) -> tuple[list[dict], int]:
    """Valid records of a feed and the number of rejected non-blank lines."""
    records, rejected = [], 0
    for line in _lines(root, feed):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            rejected += 1
            continue
        if not isinstance(record, dict):
            rejected += 1
            continue
        if feed == "accelerometer" and "timeStamp" in record and "timestamp" not in record:
            record["timestamp"] = record.pop("timeStamp")
        ok = {
            "customer": _valid_customer,
            "accelerometer": lambda r: (
                isinstance(r.get("user"), str)
                and bool(EMAIL.match(r["user"]))
                and _is_ms(r.get("timestamp"))
                and all(_is_acceleration(r.get(a)) for a in "xyz")
            ),
            "step_trainer": lambda r: (
                _is_ms(r.get("sensorReadingTime"))
                and isinstance(r.get("serialNumber"), str)
                and bool(UUID.match(r["serialNumber"]))
                and isinstance(r.get("distanceFromObject"), int)
                and r["distanceFromObject"] >= 0
            ),
        }[feed](record)
        if ok:
            records.append(record)
        else:
            rejected += 1
    return records, rejected


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
        holders = {
            identity
            for identity, since, until in claims.get(serial, [])
            if since <= reading_time and (until is None or reading_time < until)
        }
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
    return email.strip(SPACE).lower()


def _ms(value: object) -> int | None:
    """An epoch-ms value the landing parser reads as one: an integer (or integer text) in the plausible range."""
    if isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
        value = int(value)
    return value if isinstance(value, int) and not isinstance(value, bool) and value in MS_RANGE else None


def _customer_history(root: Path) -> dict[str, list[_Delivered]]:
    """Every customer's delivered records by identity, exact re-deliveries dropped (the first arrival counts)."""
    folder = root / "customer" / "landing"
    lines = []
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.name.startswith(("_", ".")):
            arrived = path.stat().st_mtime_ns // 1_000_000
            name = str(path.relative_to(folder))
            lines += [(arrived, name, n, text) for n, text in enumerate(path.read_text().splitlines(), start=1)]
    history: dict[str, list[_Delivered]] = defaultdict(list)
    seen: set = set()
    for arrived, name, n, text in sorted(lines):
        if not text.strip():
            continue
        try:
            record = json.loads(text)
        except json.JSONDecodeError:
            continue
        if not isinstance(record, dict) or not isinstance(record.get("email"), str):
            continue
        identity = _identity(record["email"])
        if _valid_customer(record):
            copy = tuple(record.get(f) for f in CUSTOMER_FIELDS)
            consent = record.get("shareWithResearchAsOfDate")
            delivered = _Delivered(
                record["email"], record["lastUpdateDate"], record["registrationDate"], arrived, name, n, consent,
                record["serialNumber"], True,
            )  # fmt: skip
        else:
            copy = text
            when = _ms(record.get("lastUpdateDate")) or arrived
            registered = _ms(record.get("registrationDate")) or when
            delivered = _Delivered(record["email"], when, registered, arrived, name, n, None, None, False)
        if identity and copy not in seen:
            seen.add(copy)
            history[identity].append(delivered)
    return history


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
