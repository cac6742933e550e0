"""Sample lake generator: the three landing feeds, with every real-feed defect at configurable rates.

    python -m stedi_assets.cli.sample --customers 1000 --seed 7 --out sample_lake

Deterministic for a seed (each customer draws from its own seeded stream), streamed to disk at any size,
and it writes `_sample_expected.json` (skipped by readers: it starts with `_`) with the counts the pipeline
must produce from the clean part, per consent policy.

Besides record-level defects, the feeds look like real exports: descriptive customer fields that fail their
rule (malformed birth dates, odd phone formats, empty or numeric names, a public-sharing date as text),
keys spelled in another case, duplicated keys, a byte-order mark, CRLF line endings, a gzip-compressed file,
and two files no reader can use (a truncated .gz and a .gz that is not gzip).
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import os
import random
import re
import shutil
import sys
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import IO

log = logging.getLogger(__name__)
EXPECTED_FILE = "_sample_expected.json"
# The built-in sample lake (STEDI_LAKE_ROOT unset).
SAMPLE_CUSTOMERS = 1000
SAMPLE_SEED = 7
FEEDS = ("customer", "accelerometer", "step_trainer")
DAY_MS = 86_400_000
EPOCH_2022 = 1_640_995_200_000
READING_INTERVAL_MS = 200
FIRST_NAMES = ("Santosh", "Ben", "Frank", "Jerry", "Sarah", "Chris", "Liz", "Lyn", "Steph", "Bobby", "Grace", "Ann")
LAST_NAMES = ("Clayton", "Lincoln", "Mitra", "Abram", "Hansen", "Jones", "Habschied", "Staples", "Wu", "Kim")


@dataclass(frozen=True)
class Rates:
    """Probabilities of each case and defect (per customer, per line or per reading, as named)."""

    no_consent: float = 0.15  # per customer: never consented to research
    withdrawn: float = 0.08  # per customer: an older record consents, the current one does not
    updated: float = 0.2  # per consenting customer: an older record without consent exists too
    consent_mid_readings: float = 0.3  # per consenting customer: consent given during the readings
    consent_after_readings: float = 0.08  # per consenting customer: every reading predates consent
    no_readings: float = 0.08  # per customer: the phone app never sent anything
    shared_device: float = 0.02  # per customer: the next customer claims the same step trainer
    time_stamp_spelling: float = 0.25  # per customer: the phone export spells the field timeStamp
    step_without_phone: float = 0.15  # per reading: a step reading with no phone reading at that millisecond
    duplicate_line: float = 0.02  # per line: delivered twice
    malformed_line: float = 0.005  # per line: not JSON, or cut off
    wrong_type: float = 0.005  # per line: e.g. "timestamp": "yesterday"
    missing_field: float = 0.005  # per line: a required field is absent
    unknown_user: float = 0.01  # per reading: phone readings of an email no customer has
    unknown_device: float = 0.01  # per reading: step readings of a serial no customer has
    redelivered_files: int = 1  # per feed: whole files delivered again under another name
    # Descriptive fields failing their rule (per customer: every record of the customer carries it); kept rows.
    bad_birth_day: float = 0.03  # "1990-13-45", "01/02/1990"
    odd_phone: float = 0.03  # "(801) 555-0142", "801.555.0142", "+1 801 555 0142"
    empty_name: float = 0.01  # ""
    numeric_name: float = 0.005  # a number where the name's text is expected
    bad_public_date: float = 0.01  # shareWithPublicAsOfDate as a date text instead of epoch ms
    # Keys (per line of the reading feeds): a valid line with a key in another case, a line with a key twice.
    case_variant_key: float = 0.02  # {"USER": ...}: matched case-insensitively, kept
    duplicate_key: float = 0.003  # {"x": 1, "x": 2} or {"user": .., "User": ..}: quarantined (duplicate_key)
    # Whole files (per feed): as real exports come.
    bom_files: int = 1  # the first files start with a UTF-8 byte-order mark
    crlf_files: int = 1  # the next files end their lines with CRLF
    gzip_files: int = 1  # the last files are gzip-compressed (name.json.gz)
    truncated_gzip_files: int = 1  # a .gz cut in half (an upload that broke): quarantined whole
    fake_gzip_files: int = 1  # a plain text file named .gz: quarantined whole


@dataclass
class Customer:
    index: int
    email: str
    serial: str
    consent: int | None  # research consent of the current record, epoch ms
    reading_times: list[int]
    step_times: list[int]  # step readings of this customer's device (paired and unpaired)
    ambiguous: bool = False  # another current customer claims the same device
    sends_steps: bool = True  # of customers sharing a device, only the first one's device sends readings


class FeedWriter:
    """Streams one feed's lines into `files` files, counting what each file holds."""

    def __init__(self, root: Path, feed: str, files: int, rng: random.Random, rates: Rates) -> None:
        self.folder = root / feed / "landing"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.feed, self.files, self.rng, self.rates = feed, files, rng, rates
        self.file_index = -1
        self.handle: IO[str] | None = None
        self.per_file: list[Counter] = []
        # Key spellings draw from a stream of their own (seeded from the defects stream's state, without
        # consuming it), so that they move no other defect.
        self.keys = random.Random(f"{feed}:{hash(rng.getstate())}")

    def open_for(self, customer_index: int, customers: int) -> None:
        wanted = customer_index * self.files // customers
        if wanted != self.file_index:
            self.close()
            self.file_index = wanted
            self.handle = (self.folder / f"{self.feed}-{wanted:04d}.json").open("w")
            self.per_file.append(Counter())

    def record(self, record: dict, defect_of: dict | None = None) -> None:
        """Writes a clean record (maybe twice), and sometimes a defective line beside it."""
        assert self.handle is not None
        counts = self.per_file[-1]
        line = json.dumps(self._keys_as_exported(record), separators=(",", ":"))
        copies = 2 if self.rng.random() < self.rates.duplicate_line else 1
        self.handle.write((line + "\n") * copies)
        counts["valid"] += copies
        for rule in _descriptive_failures(record):
            counts[f"descriptive:{rule}"] += copies
        self._duplicate_key_defect(record)
        roll = self.rng.random()
        r = self.rates
        if roll < r.malformed_line:
            bad = "this is not json" if self.rng.random() < 0.3 else line[: len(line) // 2]
        elif roll < r.malformed_line + r.wrong_type:
            field = next(k for k in ("timestamp", "timeStamp", "sensorReadingTime", "registrationDate") if k in record)
            bad = json.dumps({**record, field: "yesterday"})
        elif roll < r.malformed_line + r.wrong_type + r.missing_field:
            field = next(k for k in ("user", "serialNumber", "email") if k in record)
            bad = json.dumps({k: v for k, v in record.items() if k != field})
        else:
            return
        self.handle.write(bad + "\n")
        counts["rejected"] += 1

    def _keys_as_exported(self, record: dict) -> dict:
        """The record, sometimes (reading feeds) with one key in another case: "USER", "Timestamp"."""
        if self.feed == "customer" or self.keys.random() >= self.rates.case_variant_key:
            return record
        key = self.keys.choice(list(record))
        spelled = key.upper() if key != key.upper() else key.lower()
        return {(spelled if k == key else k): v for k, v in record.items()}

    def _duplicate_key_defect(self, record: dict) -> None:
        """Sometimes (reading feeds) a line with a key twice, as the same spelling or in another case.

        Customer lines are left out: which of two e-mails a record has is the identity rules' question."""
        if self.feed == "customer" or self.keys.random() >= self.rates.duplicate_key:
            return
        assert self.handle is not None
        key = self.keys.choice(list(record))
        again = key if self.keys.random() < 0.5 else key.upper()
        pairs = [*record.items(), (again, record[key])]
        self.handle.write("{" + ",".join(f"{json.dumps(k)}:{json.dumps(v)}" for k, v in pairs) + "}\n")
        self.per_file[-1]["rejected"] += 1

    def file_names(self) -> list[Path]:
        return [self.folder / f"{self.feed}-{index:04d}.json" for index in range(len(self.per_file))]

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()
            self.handle = None

    def redeliver(self) -> Counter:
        """Copies whole files under new names, as a feed that re-sends an export; returns what they add."""
        added: Counter = Counter()
        for index in range(min(self.rates.redelivered_files, len(self.per_file))):
            source = self.folder / f"{self.feed}-{index:04d}.json"
            shutil.copyfile(source, self.folder / f"{self.feed}-{index:04d}-resent.json")
            added += self.per_file[index]
        return added

    def totals(self) -> Counter:
        return sum(self.per_file, Counter())


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _customer(seed: int, index: int, rates: Rates, shared_serial: str | None, readings: int) -> tuple:
    """One customer's records and readings, drawn from the customer's own stream."""
    rng = random.Random(f"{seed}:customer:{index}")
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    email = f"{first}.{last}.{index}@test.com"
    serial = shared_serial or _uuid(rng)
    registered = EPOCH_2022 + rng.randrange(365) * DAY_MS + rng.randrange(DAY_MS)
    # Sessions start on a shared grid of whole seconds, so different customers read at the same millisecond.
    start = EPOCH_2022 + 400 * DAY_MS + rng.randrange(30) * 1000
    count = 0 if rng.random() < rates.no_readings else readings
    times = [start + j * READING_INTERVAL_MS for j in range(count)]

    kind = rng.random()
    withdrawn = rates.no_consent <= kind < rates.no_consent + rates.withdrawn
    consent: int | None
    if kind < rates.no_consent + rates.withdrawn:
        consent = None
    else:
        place = rng.random()
        if place < rates.consent_after_readings:
            consent = start + (count + 1) * READING_INTERVAL_MS
        elif place < rates.consent_after_readings + rates.consent_mid_readings and count > 1:
            consent = times[rng.randrange(1, count)]
        else:
            consent = registered + DAY_MS
    base = {
        "customerName": f"{first} {last}",
        "email": email,
        "phone": f"{rng.randrange(10**9, 10**10)}",
        "birthDay": f"{rng.randrange(1940, 2005)}-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}",
        "serialNumber": serial,
        "registrationDate": registered,
        "shareWithPublicAsOfDate": registered if rng.random() < 0.5 else None,
        "shareWithFriendsAsOfDate": registered if rng.random() < 0.5 else None,
    }
    _descriptive_defects(base, seed, index, rates)
    updated = start + count * READING_INTERVAL_MS + DAY_MS
    records = []
    if withdrawn:
        records.append({**base, "lastUpdateDate": registered, "shareWithResearchAsOfDate": registered})
    elif consent is not None and rng.random() < rates.updated:
        records.append({**base, "lastUpdateDate": registered, "shareWithResearchAsOfDate": None})
    records.append({**base, "lastUpdateDate": max(updated, consent or 0), "shareWithResearchAsOfDate": consent})
    rng.shuffle(records)

    steps = [t for t in times]
    steps += [t + READING_INTERVAL_MS // 2 for t in times if rng.random() < rates.step_without_phone]
    if not times:
        steps = [start + j * 1000 + 7 for j in range(5)]
    customer = Customer(index, email, serial, consent, times, sorted(steps))
    return customer, records, rng


def ensure_sample_lake(root: Path) -> None:
    """The built-in sample lake (STEDI_LAKE_ROOT unset): generated on first use, kept afterwards."""
    if not root.exists():
        log.info("generating the sample lake at %s", root)
        generate(root, customers=SAMPLE_CUSTOMERS, seed=SAMPLE_SEED)


def generate(out: Path, customers: int, seed: int, readings: int = 60, files: int = 4, rates: Rates = Rates()) -> dict:
    """Writes the landing feeds under `out` and returns the expected counts (also written to EXPECTED_FILE)."""
    out.mkdir(parents=True, exist_ok=True)
    noise = random.Random(f"{seed}:defects")
    writers = {feed: FeedWriter(out, feed, max(1, min(files, customers)), noise, rates) for feed in FEEDS}
    expected = {policy: Counter() for policy in ("since", "flag")}
    ambiguous_steps = 0
    previous: Customer | None = None
    share_next = False
    for index in range(customers + 1):
        # Customers are finished one step late, once we know whether the next one claims the same device.
        current = None
        if index < customers:
            shared = previous.serial if (previous is not None and share_next) else None
            current, records, rng = _customer(seed, index, rates, shared, readings)
            current.ambiguous = shared is not None
            current.sends_steps = shared is None
            if previous is not None and shared is not None:
                previous.ambiguous = True
            share_next = rng.random() < rates.shared_device
            for writer in writers.values():
                writer.open_for(index, customers)
            for record in records:
                writers["customer"].record(record)
            _write_readings(writers, current, rng, rates)
        if previous is not None:
            ambiguous_steps += _expect(expected, previous)
        previous = current

    for writer in writers.values():
        writer.close()
    landing = {feed: writer.totals() + writer.redeliver() for feed, writer in writers.items()}
    broken = {feed: _as_exported(writer, rates) for feed, writer in writers.items()}
    report = {
        "customers": customers,
        "seed": seed,
        "readings_per_customer": readings,
        "rates": asdict(rates),
        "landing_rows": {f"{feed}_landing": landing[feed]["valid"] for feed in FEEDS},
        "quarantined_rows": {
            **{f"{feed}_landing_quarantine": landing[feed]["rejected"] + broken[feed] for feed in FEEDS},
            "step_trainer_trusted_quarantine": ambiguous_steps,
        },
        # Of those, whole files that no reader can use (one quarantine row each).
        "quarantined_files": {f"{feed}_landing_quarantine": broken[feed] for feed in FEEDS},
        # Kept landing rows failing each descriptive rule (rules no row fails are left out).
        "descriptive_failures": {
            f"{feed}_landing": {
                key.removeprefix("descriptive:"): count
                for key, count in sorted(landing[feed].items())
                if key.startswith("descriptive:")
            }
            for feed in FEEDS
        },
        "tables": {policy: dict(sorted(counts.items())) for policy, counts in expected.items()},
    }
    (out / EXPECTED_FILE).write_text(json.dumps(report, indent=2) + "\n")
    return report


def _write_readings(writers: dict[str, FeedWriter], c: Customer, rng: random.Random, rates: Rates) -> None:
    spelling = "timeStamp" if rng.random() < rates.time_stamp_spelling else "timestamp"
    phone, device = writers["accelerometer"], writers["step_trainer"]
    for t in c.reading_times:
        xyz = {axis: round(rng.uniform(-2, 2), 3) for axis in "xyz"}
        phone.record({"user": c.email, spelling: t, **xyz})
        if rng.random() < rates.unknown_user:
            phone.record({"user": f"ghost.{c.index}.{t}@nowhere.com", "timestamp": t, **xyz})
    for t in c.step_times if c.sends_steps else []:
        device.record({"sensorReadingTime": t, "serialNumber": c.serial, "distanceFromObject": rng.randrange(0, 500)})
        if rng.random() < rates.unknown_device:
            device.record({"sensorReadingTime": t, "serialNumber": _uuid(rng), "distanceFromObject": 1})


def _expect(expected: dict[str, Counter], c: Customer) -> int:
    """Adds one finished customer's share of every table; returns its step readings quarantined as ambiguous."""
    phone_times = set(c.reading_times)
    for policy, counts in expected.items():
        if c.consent is None:
            continue
        counts["customer_trusted"] += 1
        kept = [t for t in c.reading_times if policy == "flag" or t >= c.consent]
        counts["accelerometer_trusted"] += len(kept)
        if not kept:
            continue
        counts["customer_curated"] += 1
        if c.ambiguous:
            continue
        steps = [t for t in c.step_times if policy == "flag" or t >= c.consent]
        counts["step_trainer_trusted"] += len(steps)
        counts["machine_learning_curated"] += sum(1 for t in steps if t in phone_times)
    return len(c.step_times) if c.ambiguous and c.sends_steps else 0


# Descriptive defects: what an export's free-text and unused fields really hold.
NAME_RULE = re.compile(r"\s*\S", re.ASCII)
PHONE_RULE = re.compile(r"\+?\d{7,15}", re.ASCII)
DATE_RULE = re.compile(r"\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])", re.ASCII)
EPOCH_MS_BOUNDS = (946_684_800_000, 4_102_444_800_000)


def _descriptive_defects(base: dict, seed: int, index: int, rates: Rates) -> None:
    """Breaks some descriptive fields of a customer's base record, from a stream of their own (so that they
    move nothing else): every record of the customer carries them."""
    rng = random.Random(f"{seed}:descriptive:{index}")
    year, month, day = base["birthDay"].split("-")
    if rng.random() < rates.bad_birth_day:
        base["birthDay"] = rng.choice([f"{year}-13-45", f"{month}/{day}/{year}", f"{year}-00-{day}", "unknown"])
    if rng.random() < rates.odd_phone:
        p = base["phone"]
        base["phone"] = rng.choice([f"({p[:3]}) {p[3:6]}-{p[6:]}", f"{p[:3]}.{p[3:6]}.{p[6:]}", f"+1 {p}", "n/a"])
    name = rng.random()
    if name < rates.empty_name:
        base["customerName"] = ""
    elif name < rates.empty_name + rates.numeric_name:
        base["customerName"] = rng.randrange(1, 10_000)
    if rng.random() < rates.bad_public_date:
        base["shareWithPublicAsOfDate"] = f"{year}-{month}-{day}"


def _descriptive_failures(record: dict) -> list[str]:
    """The descriptive rules a customer record fails, named as the pipeline names them (column:rule)."""
    failed = []
    for name, rule in (("customerName", NAME_RULE), ("phone", PHONE_RULE), ("birthDay", DATE_RULE)):
        value = record.get(name)
        if value is None:
            continue
        if not isinstance(value, str):
            failed.append(f"{name}:wrong_type")
        elif not (rule.match(value) if name == "customerName" else rule.fullmatch(value)):
            failed.append(f"{name}:str_matches")
    for name in ("shareWithPublicAsOfDate", "shareWithFriendsAsOfDate"):
        value = record.get(name)
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool):
            failed.append(f"{name}:wrong_type")
        elif value < EPOCH_MS_BOUNDS[0]:
            failed.append(f"{name}:greater_than_or_equal_to")
        elif value > EPOCH_MS_BOUNDS[1]:
            failed.append(f"{name}:less_than_or_equal_to")
    return failed


def _rewrite(path: Path, target: Path, transform, compress: bool = False) -> None:
    """Streams `path` through `transform` (bytes of a line -> bytes) into `target`, keeping its modification
    time (its arrival); `path` is replaced."""
    stat = path.stat()
    temporary = path.with_name("." + target.name + ".tmp")
    with path.open("rb") as source, temporary.open("wb") as raw:
        sink = gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) if compress else raw
        for number, line in enumerate(source):
            sink.write(transform(number, line))
        if compress:
            sink.close()
    os.replace(temporary, target)
    if target != path:
        path.unlink()
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def _unusable_copies(writer: FeedWriter, source: Path, rates: Rates) -> int:
    """Files no reader can use, made from a feed file: a .gz cut in half, and plain text named .gz."""
    for n in range(rates.truncated_gzip_files):
        target = writer.folder / f"{writer.feed}-truncated-{n}.json.gz"
        with (
            source.open("rb") as raw,
            target.open("wb") as out,
            gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0) as packed,
        ):
            shutil.copyfileobj(raw, packed)
        os.truncate(target, target.stat().st_size // 2)
    for n in range(rates.fake_gzip_files):
        shutil.copyfile(source, writer.folder / f"{writer.feed}-fake-{n}.json.gz")
    return rates.truncated_gzip_files + rates.fake_gzip_files


def _as_exported(writer: FeedWriter, rates: Rates) -> int:
    """Gives a feed's files the shapes of real exports (BOM, CRLF, gzip) without changing a line, and adds
    the unusable files; returns how many of those (the pipeline quarantines each as one row)."""
    names = writer.file_names()
    broken = _unusable_copies(writer, names[0], rates) if names else 0
    for index, path in enumerate(names):
        if index < rates.bom_files:
            _rewrite(path, path, lambda number, line: (b"\xef\xbb\xbf" if number == 0 else b"") + line)
        if rates.bom_files <= index < rates.bom_files + rates.crlf_files:
            _rewrite(path, path, lambda number, line: line[:-1] + b"\r\n" if line.endswith(b"\n") else line)
        if index >= len(names) - rates.gzip_files:
            _rewrite(path, path.with_name(path.name + ".gz"), lambda number, line: line, compress=True)
    return broken


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=SAMPLE_CUSTOMERS)
    parser.add_argument("--seed", type=int, default=SAMPLE_SEED)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--readings", type=int, default=60, help="phone readings per customer")
    parser.add_argument("--files", type=int, default=4, help="files per feed")
    names = [f.name for f in fields(Rates)]
    parser.add_argument("--rate", action="append", default=[], metavar="NAME=VALUE", help=f"one of {names}")
    args = parser.parse_args(argv)
    overrides = {}
    for item in args.rate:
        name, _, value = item.partition("=")
        if name not in names:
            parser.error(f"unknown rate {name!r}; known: {', '.join(names)}")
        overrides[name] = int(value) if isinstance(getattr(Rates(), name), int) else float(value)
    report = generate(args.out, args.customers, args.seed, args.readings, args.files, Rates(**overrides))
    json.dump({k: report[k] for k in ("landing_rows", "quarantined_rows", "tables")}, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
