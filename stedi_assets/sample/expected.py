"""What the pipeline must produce from a generated lake: the counts per table and consent policy, the cases met,
and the descriptive rules that kept rows fail.

The generator notes what it delivered (a `Ledger`, an `Entry` per record of a customer, the `Claim`s on devices
its records make) and hands customers to `expect` once finished, a group at a time: a customer with the next ones
that claim their device.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from stedi_assets.sample.world import FUTURE_CONSENT_FROM, Claim, Customer, Entry, Record, arrival_ms


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


def expect(expected: dict[str, Counter[str]], group: list[Customer], ledger: Ledger) -> int:
    """Adds a finished group of customers' share of every table; returns its step readings quarantined as
    ambiguous. A group is one customer, or customers linked by a device one hands over or shares with the next:
    no customer outside it claims a device it sent readings from, so it knows every claim they depend on."""
    for c in group:
        _settle(expected, c, ledger)
    claims = [(c, claim) for c in group for claim in c.claims]
    ambiguous = 0
    for c in group:
        for serial, t in c.sent:
            owners, before_first = _holders(serial, t, claims)
            ledger.cases.update(_ownership_case(serial, claims, owners, before_first))
            if len(owners) > 1:
                ambiguous += 1
            elif owners:
                _count_step(expected, owners[0], t)
    return ambiguous


def _holders(serial: str, t: int, claims: list[tuple[Customer, Claim]]) -> tuple[list[Customer], bool]:
    """Who held a device at a reading's time, and whether the reading predates every claim of it: the customers
    whose claims hold it then; before its first claim, those of the first claim (its first known holders).
    Every claim of the model holds for some time (start < end)."""
    of_device = [(c, claim) for c, claim in claims if claim.serial == serial]
    first = min((claim.start for _, claim in of_device), default=None)
    before_first = first is not None and t < first
    held = (
        c
        for c, claim in of_device
        if (claim.start == first if before_first else claim.start <= t and (claim.end is None or t < claim.end))
    )
    return list({c.index: c for c in held}.values()), before_first


def _ownership_case(
    serial: str, claims: list[tuple[Customer, Claim]], owners: list[Customer], before_first: bool
) -> list[str]:
    """The ledger's case of a step reading whose device nobody held then, or that predates its every claim."""
    if not owners:
        return ["reading_of_a_released_device"]
    if not before_first:
        return []
    if len(owners) > 1:
        return ["reading_before_simultaneous_first_claims"]
    several = len({c.index for c, claim in claims if claim.serial == serial}) > 1
    return ["reading_before_first_claim_of_a_device_with_several_holders" if several else "reading_before_first_claim"]


def _settle(expected: dict[str, Counter[str]], c: Customer, ledger: Ledger) -> None:
    """Adds a finished customer's customer and phone-reading rows; notes their consent and where they are curated."""
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
    for policy, counts in expected.items():
        if consent is None:
            continue
        counts["customer_trusted"] += 1
        kept = [t for t in c.reading_times if policy == "flag" or t >= consent]
        counts["accelerometer_trusted"] += len(kept)
        if kept:
            counts["customer_curated"] += 1
            c.curated.add(policy)


def _count_step(expected: dict[str, Counter[str]], owner: Customer, t: int) -> None:
    """Adds a step reading owned by `owner` alone, and its pairs with the owner's phone readings, where kept."""
    for policy, counts in expected.items():
        consent = owner.effective_consent
        if consent is None or policy not in owner.curated or (policy == "since" and t < consent):
            continue
        counts["step_trainer_trusted"] += 1
        counts["machine_learning_curated"] += t in owner.reading_times


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
