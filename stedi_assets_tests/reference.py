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
from collections import Counter, defaultdict
from pathlib import Path

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")
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
