"""Sample lake generator: the three landing feeds, with every real-feed defect at configurable rates.

    stedi sample [--customers 1000] [--seed 7] [--out sample_lake] [--if-missing]

Deterministic for a seed (each customer draws from its own seeded stream), streamed to disk at any size,
and it writes `_sample_expected.json` (skipped by readers: it starts with `_`) with the counts the pipeline
must produce from the clean part, per consent policy.

Devices have histories as real ones do: some read before their holder registered them (their first known holder's
readings), some are registered by two customers at the same millisecond (ambiguous from the start), are handed
over, or read after their holder put them away (nobody's).

Besides record-level defects, the feeds look like real exports: descriptive customer fields that fail their
rule (malformed birth dates, odd phone formats, empty or numeric names, a public-sharing date as text),
keys spelled in another case, duplicated keys, a byte-order mark, CRLF line endings, a gzip-compressed file,
and two files no reader can use (a truncated .gz and a .gz that is not gzip).
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import json
import os
import random
import shutil
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import IO, Any

from stedi_assets.sample.expected import Ledger, descriptive_failures, expect
from stedi_assets.sample.world import (
    ARRIVAL_BASE,
    ARRIVAL_STEP_MS,
    DAY_MS,
    EMAIL_SPACES,
    EPOCH_2022,
    EPOCH_MS_RANGE,
    EXPECTED_FILE,
    FEEDS,
    FIRST_NAMES,
    FUTURE_CONSENT_FROM,
    HANDOVER,
    LAST_NAMES,
    READING_INTERVAL_MS,
    STRAY_READING_MS,
    Claim,
    Customer,
    Entry,
    Rates,
    Record,
    arrival_ms,
    identity,
)


class FeedWriter:
    """Streams one feed's lines into `files` files, counting what each file holds."""

    def __init__(self, root: Path, feed: str, files: int, rng: random.Random, rates: Rates) -> None:
        self.folder = root / feed / "landing"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.feed, self.files, self.rng, self.rates = feed, files, rng, rates
        self.file_index = -1
        self.handle: IO[str] | None = None
        self.per_file: list[Counter[str]] = []
        # Key spellings draw from a stream of their own (seeded from the defects stream's state, without
        # consuming it), so that they move no other defect. The state's digest, not hash(): hash(None) inside the
        # state differs between processes, and a seed must give the same lake every time.
        state = hashlib.sha256(repr(rng.getstate()).encode()).hexdigest()
        self.keys = random.Random(f"{feed}:{state}")

    def open_for(self, customer_index: int, customers: int) -> None:
        wanted = customer_index * self.files // customers
        if wanted != self.file_index:
            self.close()
            self.file_index = wanted
            self.handle = (self.folder / f"{self.feed}-{wanted:04d}.json").open("w")
            self.per_file.append(Counter())

    def record(self, record: Record, defect_of: Record | None = None) -> str | None:
        """Writes a clean record (maybe twice), and sometimes a defective line beside it, which it returns."""
        assert self.handle is not None
        counts = self.per_file[-1]
        line = json.dumps(self._keys_as_exported(record), separators=(",", ":"))
        copies = 2 if self.rng.random() < self.rates.duplicate_line else 1
        self.handle.write((line + "\n") * copies)
        counts["valid"] += copies
        for rule in descriptive_failures(record):
            counts[f"descriptive:{rule}"] += copies
        self._duplicate_key_defect(record)
        roll = self.rng.random()
        r = self.rates
        if roll < r.malformed_line:
            bad = "this is not json" if self.rng.random() < 0.3 else line[: len(line) // 2]
        elif roll < r.malformed_line + r.wrong_type:
            field: str = next(
                k for k in ("timestamp", "timeStamp", "sensorReadingTime", "registrationDate") if k in record
            )
            bad = json.dumps({**record, field: "yesterday"})
        elif roll < r.malformed_line + r.wrong_type + r.missing_field:
            field = next(k for k in ("user", "serialNumber", "email") if k in record)
            bad = json.dumps({k: v for k, v in record.items() if k != field})
        else:
            return None
        self.handle.write(bad + "\n")
        counts["rejected"] += 1
        return bad

    def _keys_as_exported(self, record: Record) -> Record:
        """The record, sometimes (reading feeds) with one key in another case: "USER", "Timestamp"."""
        if self.feed == "customer" or self.keys.random() >= self.rates.case_variant_key:
            return record
        key = self.keys.choice(list(record))
        spelled = key.upper() if key != key.upper() else key.lower()
        return {(spelled if k == key else k): v for k, v in record.items()}

    def _duplicate_key_defect(self, record: Record) -> None:
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

    def redeliver(self) -> Counter[str]:
        """Copies whole files under new names, as a feed that re-sends an export; returns what they add."""
        added: Counter[str] = Counter()
        for index in range(min(self.rates.redelivered_files, len(self.per_file))):
            source = self.folder / f"{self.feed}-{index:04d}.json"
            shutil.copyfile(source, self.folder / f"{self.feed}-{index:04d}-resent.json")
            added += self.per_file[index]
        return added

    def totals(self) -> Counter[str]:
        return sum(self.per_file, Counter())


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _customer(
    seed: int,
    index: int,
    rates: Rates,
    shared: Customer | None,
    readings: int,
    received: tuple[str, int] | None = None,
    last_of_file: bool = False,
) -> tuple[Customer, Sequence[Record | str], random.Random]:
    """One customer's records (dicts: valid lines; str: lines the pipeline quarantines) and readings, drawn from
    the customer's own stream. `shared`: the previous customer, whose device this one claims too; `received`:
    (serial, time) of a device this customer takes over from the previous. The last customer of a file delivers
    its current record again with the next customer, in the next file: an exact tie that the files' arrival
    order decides (see `arrival_ms`)."""
    rng = random.Random(f"{seed}:customer:{index}")
    # What the customer's device did before they registered it, and whether a shared one is claimed by both at
    # once, draw from a stream of their own: they move nothing else.
    history = random.Random(f"{seed}:device-history:{index}")
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    email = f"{first}.{last}.{index}@test.com"
    own_serial = _uuid(rng)
    serial = received[0] if received else shared.serial if shared else own_serial
    registered = EPOCH_2022 + rng.randrange(365) * DAY_MS + rng.randrange(DAY_MS)
    if shared is not None and history.random() < rates.simultaneous_claim:
        registered = shared.registered  # two first claims of the device at the same millisecond
    # Sessions start on a shared grid of whole seconds, so different customers read at the same millisecond; a
    # device's new owner reads after the hand-over.
    start = EPOCH_2022 + (402 if received else 400) * DAY_MS + rng.randrange(30) * 1000
    count = 0 if rng.random() < rates.no_readings else readings
    times = [start + j * READING_INTERVAL_MS for j in range(count)]
    # A device taken over was its giver's before: only others' devices may have read before anyone claimed them.
    early: list[int] = []
    if received is None and history.random() < rates.early_readings:
        early_count = max(1, readings // 4)
        early_start = registered - history.randrange(1, DAY_MS) - early_count * READING_INTERVAL_MS
        early = [early_start + j * READING_INTERVAL_MS for j in range(early_count)]

    story = _story(rng, rates, received is not None, shared is not None, last_of_file)
    kind = rng.random()
    withdrawn = story == "plain" and rates.no_consent <= kind < rates.no_consent + rates.withdrawn
    consent: int | None
    if story == "gives" or (story != "receives" and kind < rates.no_consent + rates.withdrawn):
        consent = None
    else:
        place = rng.random()
        if story == "future_consent":
            consent = FUTURE_CONSENT_FROM + rng.randrange(3650) * DAY_MS
        elif story == "receives":
            consent = registered + DAY_MS  # long before the device's previous owner read with it
        elif place < rates.consent_after_readings:
            consent = start + (count + 1) * READING_INTERVAL_MS
        elif place < rates.consent_after_readings + rates.consent_mid_readings and count > 1:
            consent = times[rng.randrange(1, count)]
        else:
            consent = registered + DAY_MS
    if story in ("future_consent", "malformed_consent") and consent is None:
        story = "plain"  # those stories are of consenting customers
    spelled = rng.random() < rates.email_variant
    base: Record = {
        "customerName": f"{first} {last}",
        "email": email,
        "phone": f"{rng.randrange(10**9, 10**10)}",
        "birthDay": f"{rng.randrange(1940, 2005)}-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}",
        "serialNumber": serial if story != "receives" else own_serial,
        "registrationDate": registered,
        "shareWithPublicAsOfDate": registered if rng.random() < 0.5 else None,
        "shareWithFriendsAsOfDate": registered if rng.random() < 0.5 else None,
    }
    _descriptive_defects(base, seed, index, rates)
    updated = start + count * READING_INTERVAL_MS + DAY_MS
    records: list[Record] = []
    if withdrawn:
        records.append({**base, "lastUpdateDate": registered, "shareWithResearchAsOfDate": registered})
    elif story in ("gives", "receives"):
        # The giver's first record holds the device until the hand-over, when a new record names a new device;
        # the receiver's first record names another device, a new one at the hand-over names this one.
        records.append({**base, "lastUpdateDate": registered, "shareWithResearchAsOfDate": consent})
        updated = HANDOVER
        base = {**base, "serialNumber": _uuid(rng) if story == "gives" else serial}
    elif consent is not None and rng.random() < rates.updated:
        records.append({**base, "lastUpdateDate": registered, "shareWithResearchAsOfDate": None})
    current_time = updated if story in ("gives", "receives", "future_consent") else max(updated, consent or 0)
    current = {**base, "lastUpdateDate": current_time, "shareWithResearchAsOfDate": consent}
    records.append(current)
    rng.shuffle(records)
    if spelled:
        records = [{**record, "email": _spell(email, rng)} for record in records]
        current = next(record for record in records if record["lastUpdateDate"] == current_time)

    steps = [t for t in times]
    steps += [t + READING_INTERVAL_MS // 2 for t in times if rng.random() < rates.step_without_phone]
    if not times:
        steps = [start + j * 1000 + 7 for j in range(5)]
    # The phone reads early with the device, if it ever sends anything.
    phone_times = early + times if times else []
    if story == "gives":
        claims = [Claim(serial, registered, HANDOVER), Claim(base["serialNumber"], HANDOVER, None)]
    elif story == "receives":
        claims = [Claim(own_serial, registered, HANDOVER), Claim(serial, HANDOVER, None)]
    else:
        claims = [Claim(serial, registered, None)]
    customer = Customer(
        index, email, serial, registered, consent, phone_times, sorted(early + steps), claims, current=current
    )
    customer.story, customer.spelled = story, spelled
    if story == "gives":
        customer.gives = (serial, HANDOVER)
        customer.stray.append((base["serialNumber"], HANDOVER - STRAY_READING_MS))
    elif story == "receives":
        customer.stray.append((own_serial, HANDOVER + STRAY_READING_MS))
    elif story == "exact_tie":
        customer.late.append(_tie_copy(customer))
    elif story == "malformed_consent":
        return customer, records + _malformed_consent(current, rng), rng
    return customer, records, rng


def _story(rng: random.Random, rates: Rates, receives: bool, shares: bool, tie: bool) -> str:
    """At most one special case per customer: a device hand-over excludes sharing one."""
    roll = rng.random()
    if receives:
        return "receives"
    if tie:
        return "exact_tie"
    for story, rate in (
        ("gives", 0.0 if shares else rates.device_move),
        ("future_consent", rates.future_consent),
        ("malformed_consent", rates.malformed_consent),
        ("exact_tie", rates.exact_tie),
    ):
        if roll < rate:
            return story
        roll -= rate
    return "plain"


def _spell(email: str, rng: random.Random) -> str:
    """The e-mail in another case, with white or zero-width space around it."""
    cased = "".join(ch.swapcase() if rng.random() < 0.3 else ch for ch in email)
    before = "".join(rng.choice(EMAIL_SPACES) for _ in range(rng.randrange(3)))
    after = "".join(rng.choice(EMAIL_SPACES) for _ in range(rng.randrange(3)))
    return before + cased + after


def _tie_copy(c: Customer) -> Record:
    """The current record again with the same times but the other research consent (and phone): an exact tie."""
    consent = c.current["shareWithResearchAsOfDate"]
    other = None if consent is not None else c.current["registrationDate"] + DAY_MS
    return {**c.current, "phone": c.current["phone"][::-1], "shareWithResearchAsOfDate": other}


def _malformed_consent(current: Record, rng: random.Random) -> list[Record | str]:
    """A newer record whose research consent is malformed (quarantined at landing). Sometimes its update time is
    unreadable too (its file's arrival stands in), sometimes a valid record newer still follows (it counts)."""
    newer = {**current, "lastUpdateDate": current["lastUpdateDate"] + DAY_MS}
    newer["shareWithResearchAsOfDate"] = rng.choice(["2023-02-30", "soon", 1234, -5])
    variant = rng.random()
    if variant < 0.25:
        newer["lastUpdateDate"] = "2023-02-30T10:00:00Z"
    lines: list[Record | str] = [json.dumps(newer, separators=(",", ":"))]
    if 0.25 <= variant < 0.5:
        lines.append({**current, "lastUpdateDate": current["lastUpdateDate"] + 2 * DAY_MS, "phone": "5550100"})
    return lines


def generate(
    out: Path,
    customers: int,
    seed: int,
    readings: int = 60,
    files: int = 4,
    rates: Rates = Rates(),  # noqa: B008 - frozen: one shared default is safe
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Writes the landing feeds under `out` and returns the expected counts (also written to EXPECTED_FILE).

    `progress` is called with the number of customers written so far, every 1% of them and once all are."""
    out.mkdir(parents=True, exist_ok=True)
    noise = random.Random(f"{seed}:defects")
    writers = {feed: FeedWriter(out, feed, max(1, min(files, customers)), noise, rates) for feed in FEEDS}
    expected: dict[str, Counter[str]] = {policy: Counter() for policy in ("since", "flag")}
    ambiguous_steps = 0
    ledger = Ledger()
    previous: Customer | None = None
    share_next = False
    # Finished customers whose devices the next customer may still claim (see `expect`).
    group: list[Customer] = []
    step = max(1, customers // 100)
    for index in range(customers + 1):
        if progress is not None and (index % step == 0 or index == customers):
            progress(index)
        # Customers are finished one step late, once their late records (delivered with the next customer,
        # perhaps in the next file) are written, and counted once the next customer claims none of their devices.
        current = None
        if index < customers:
            shared = previous if share_next else None
            received = previous.gives if previous is not None else None
            last_of_file = (
                index * writers["customer"].files // customers != (index + 1) * writers["customer"].files // customers
            )
            current, records, rng = _customer(seed, index, rates, shared, readings, received, last_of_file)
            current.giver = previous if received else None
            current.sends_steps = shared is None
            share_next = rng.random() < rates.shared_device and current.story not in ("gives", "receives")
            for writer in writers.values():
                writer.open_for(index, customers)
        if previous is not None:
            _deliver(writers["customer"], previous, previous.late, ledger)
            group.append(previous)
        if current is None or (current.giver is None and current.sends_steps):
            ambiguous_steps += expect(expected, group, ledger)
            group = []
        if current is not None:
            _deliver(writers["customer"], current, records, ledger)
            _write_readings(writers, current, rng, rates)
        previous = current

    for writer in writers.values():
        writer.close()
    landing = {feed: writer.totals() + writer.redeliver() for feed, writer in writers.items()}
    broken = {feed: _as_exported(writer, rates) for feed, writer in writers.items()}
    _stamp_arrivals(writers)
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
        "cases": dict(sorted(ledger.cases.items())),
    }
    (out / EXPECTED_FILE).write_text(json.dumps(report, indent=2) + "\n")
    return report


def _write_readings(writers: dict[str, FeedWriter], c: Customer, rng: random.Random, rates: Rates) -> None:
    spelling = "timeStamp" if rng.random() < rates.time_stamp_spelling else "timestamp"
    phone, device = writers["accelerometer"], writers["step_trainer"]
    for t in c.reading_times:
        xyz = {axis: round(rng.uniform(-2, 2), 3) for axis in "xyz"}
        user = _spell(c.email, rng) if c.spelled and rng.random() < 0.5 else c.email
        phone.record({"user": user, spelling: t, **xyz})
        if c.spelled and rng.random() < 0.05:
            # The same reading again under another spelling of the address: one reading, kept once.
            phone.record({"user": _spell(c.email, rng), spelling: t, **xyz})
            c.story_cases.append("email_variant_reading_resent")
        if rng.random() < rates.unknown_user:
            phone.record({"user": f"ghost.{c.index}.{t}@nowhere.com", "timestamp": t, **xyz})
    own = [(c.serial, t) for t in c.step_times] if c.sends_steps else []
    for serial, t in own + c.stray:
        device.record({"sensorReadingTime": t, "serialNumber": serial, "distanceFromObject": rng.randrange(0, 500)})
        c.sent.append((serial, t))
        if rng.random() < rates.unknown_device:
            device.record({"sensorReadingTime": t, "serialNumber": _uuid(rng), "distanceFromObject": 1})


def _deliver(writer: FeedWriter, c: Customer, records: Sequence[Record | str], ledger: Ledger) -> None:
    """Writes a customer's records (dicts valid, str quarantined) and notes each as an entry of the customer."""
    if records and records is c.late:
        later = arrival_ms(writer.file_index) - arrival_ms(c.current_file)
        if writer.file_index == c.current_file:
            c.story_cases.append("exact_tie_same_file")
        elif later:
            c.story_cases.append("exact_tie_later_file" if later > 0 else "exact_tie_earlier_file")
        else:
            c.story_cases.append("exact_tie_same_arrival")
    for record in records:
        if isinstance(record, str):
            _reject(writer, record)
            _note_quarantined(writer, c, record, ledger)
            continue
        ledger.line += 1
        if record is c.current:
            c.current_file = writer.file_index
        time, registered = record["lastUpdateDate"], record["registrationDate"]
        consent = record["shareWithResearchAsOfDate"]
        c.entries.append(Entry(time, registered, writer.file_index, ledger.line, consent, True))
        defect = writer.record(record)
        if defect is not None:
            _note_quarantined(writer, c, defect, ledger)


def _reject(writer: FeedWriter, line: str) -> None:
    """Writes a line the pipeline quarantines, counted as rejected in the writer's current file."""
    assert writer.handle is not None
    writer.handle.write(line + "\n")
    writer.per_file[-1]["rejected"] += 1


def _note_quarantined(writer: FeedWriter, c: Customer, line: str, ledger: Ledger) -> None:
    """A quarantined customer line whose e-mail can be read is a record of that customer that withholds consent;
    its unreadable times take the latest value they can have (update: the file's arrival; registration: update)."""
    ledger.line += 1
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        return
    email = record.get("email") if isinstance(record, dict) else None
    if not isinstance(email, str) or identity(email) != c.identity:
        return

    def readable(value: object) -> int | None:
        if isinstance(value, int) and not isinstance(value, bool) and value in EPOCH_MS_RANGE:
            return value
        return None

    time = readable(record.get("lastUpdateDate")) or arrival_ms(writer.file_index)
    registered = readable(record.get("registrationDate")) or time
    c.entries.append(Entry(time, registered, writer.file_index, ledger.line, None, False))


def _stamp_arrivals(writers: dict[str, FeedWriter]) -> None:
    """Sets every landing file's modification time (its arrival): NNNN files by `arrival_ms`, any other file
    (files delivered again) after all of them, in name order."""
    for writer in writers.values():
        numbered = (writer.folder / f"{writer.feed}-{k:04d}.json" for k in range(len(writer.per_file)))
        # An exported file may have become gzip (`_as_exported`): the same file, the same arrival.
        found = (path if path.exists() else path.with_name(path.name + ".gz") for path in numbered)
        arrivals = {path: arrival_ms(k) for k, path in enumerate(found)}
        latest = max(arrivals.values(), default=ARRIVAL_BASE)
        others = sorted(p for p in writer.folder.iterdir() if p.is_file() and p not in arrivals)
        arrivals.update({path: latest + n * ARRIVAL_STEP_MS for n, path in enumerate(others, start=1)})
        for path, ms in arrivals.items():
            os.utime(path, ns=(ms * 1_000_000, ms * 1_000_000))


def _descriptive_defects(base: Record, seed: int, index: int, rates: Rates) -> None:
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


def _rewrite(path: Path, target: Path, transform: Callable[[int, bytes], bytes], compress: bool = False) -> None:
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
    """Files no reader can use, made from a feed file: a .gz cut in half, plain text named .GZ, and a bzip2 copy
    (names in other cases than Spark's codec suffixes: Spark takes them in any case)."""
    for n in range(rates.truncated_gzip_files):
        target = writer.folder / f"{writer.feed}-truncated-{n}.json.Gz"
        with (
            source.open("rb") as raw,
            target.open("wb") as out,
            gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0) as packed,
        ):
            shutil.copyfileobj(raw, packed)
        os.truncate(target, target.stat().st_size // 2)
    for n in range(rates.fake_gzip_files):
        shutil.copyfile(source, writer.folder / f"{writer.feed}-fake-{n}.json.GZ")
    for n in range(rates.bzip2_files):
        with source.open("rb") as raw, bz2.open(writer.folder / f"{writer.feed}-bzip2-{n}.json.bz2", "wb") as packed:
            shutil.copyfileobj(raw, packed)
    return rates.truncated_gzip_files + rates.fake_gzip_files + rates.bzip2_files


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
