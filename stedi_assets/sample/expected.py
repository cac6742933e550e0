"""What the pipeline must produce from a generated lake: the counts per table and consent policy, the cases met,
and the descriptive rules that kept rows fail.

The generator notes what it delivered (a `Ledger`, an `Entry` per record of a customer) and hands each customer
to `expect` once it is finished.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from stedi_assets.sample.world import FUTURE_CONSENT_FROM, Customer, Entry, Record, arrival_ms


@dataclass
class Ledger:
    """The generator's own bookkeeping of what it delivered: order of lines, and how often each case occurs."""

    line: int = 0
    cases: Counter[str] = field(default_factory=Counter)


def _current_entry(entries: list[Entry]) -> Entry:
    """The current record: latest update, then registration, then arrival; on equal arrival the last line of a
    file, then the record without consent, then file and line."""
    last_line: dict[tuple[int, int, int, int], int] = {}
    for e in entries:
        key = (e.time, e.registered, arrival_ms(e.file), e.file)
        last_line[key] = max(last_line.get(key, 0), e.line)

    def order(e: Entry) -> tuple[int, int, int, bool, bool, int, int]:
        last = last_line[(e.time, e.registered, arrival_ms(e.file), e.file)] == e.line
        return (e.time, e.registered, arrival_ms(e.file), last, e.consent is None, e.file, e.line)

    return max(entries, key=order)


def expect(expected: dict[str, Counter[str]], c: Customer, ledger: Ledger) -> int:
    """Adds one finished customer's share of every table; returns its step readings quarantined as ambiguous."""
    current = _current_entry(c.entries)
    consent = current.consent if current.accepted and (current.consent or 0) < FUTURE_CONSENT_FROM else None
    c.effective_consent = consent
    ledger.cases.update(c.story_cases)
    ledger.cases.update(
        name
        for name, happened in (
            ("email_variant", c.spelled),
            ("future_consent", c.story == "future_consent"),
            ("malformed_consent", c.story == "malformed_consent"),
            ("customer_out_by_quarantined_record", not current.accepted),
            ("device_move", c.giver is not None and c.giver.effective_consent is None and consent is not None),
        )
        if happened
    )
    phone_times = set(c.reading_times)
    for policy, counts in expected.items():
        if consent is None:
            continue
        counts["customer_trusted"] += 1
        kept = [t for t in c.reading_times if policy == "flag" or t >= consent]
        counts["accelerometer_trusted"] += len(kept)
        if not kept:
            continue
        counts["customer_curated"] += 1
        if c.ambiguous:
            continue
        steps = [t for t in c.step_times if policy == "flag" or t >= consent]
        counts["step_trainer_trusted"] += len(steps)
        counts["machine_learning_curated"] += sum(1 for t in steps if t in phone_times)
    return len(c.step_times) if c.ambiguous and c.sends_steps else 0


# Descriptive rules: what a customer record's free-text and unused fields must hold (rows failing them are kept).
NAME_RULE = re.compile(r"\s*\S", re.ASCII)
PHONE_RULE = re.compile(r"\+?\d{7,15}", re.ASCII)
DATE_RULE = re.compile(r"\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])", re.ASCII)
EPOCH_MS_BOUNDS = (946_684_800_000, 4_102_444_800_000)


def descriptive_failures(record: Record) -> list[str]:
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
