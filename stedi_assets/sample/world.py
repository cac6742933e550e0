"""The sample's world: its sizes and dates, the defect rates, whose e-mail is whose, when files arrive, and the
customers the generator makes (with the records each delivered, which the expected counts are reckoned from).

What the generator draws from and the expected counts are reckoned in; it imports nothing of the package.
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypeAlias

EXPECTED_FILE = "_sample_expected.json"
SAMPLE_CUSTOMERS = 1000
PROGRESS_FROM = 5000  # customers: `stedi sample` shows its progress from this size
SAMPLE_SEED = 7
FEEDS = ("customer", "accelerometer", "step_trainer")
DAY_MS = 86_400_000
EPOCH_2022 = 1_640_995_200_000
READING_INTERVAL_MS = 200
# Landing files arrive (modification time) from here on, a minute apart: after every record's lastUpdateDate.
ARRIVAL_BASE = EPOCH_2022 + 500 * DAY_MS
ARRIVAL_STEP_MS = 60_000
# Research consent dated from 2090 on is in the future of any run the expectations are meant for.
FUTURE_CONSENT_FROM = 3_786_912_000_000
# Devices change hands on this day; phone sessions are on day 400, those of a device's new owner on day 402.
HANDOVER = EPOCH_2022 + 401 * DAY_MS
# A giver's new device reads this long before the hand-over (before it was claimed: its first holder's), and the
# receiver's old device this long after it (once put away: nobody's).
STRAY_READING_MS = 3_600_000
# What may surround an e-mail in the feeds without changing whose it is (a subset of what the pipeline strips).
EMAIL_SPACES = (" ", "\t", "\u00a0", "\u200b", "\u200c", "\u200d", "\ufeff", "\u2060")
# The epoch-ms range the contract accepts: a time outside it is unreadable.
EPOCH_MS_RANGE = range(946_684_800_000, 4_102_444_800_000 + 1)
FIRST_NAMES = ("Santosh", "Ben", "Frank", "Jerry", "Sarah", "Chris", "Liz", "Lyn", "Steph", "Bobby", "Grace", "Ann")
LAST_NAMES = ("Clayton", "Lincoln", "Mitra", "Abram", "Hansen", "Jones", "Habschied", "Staples", "Wu", "Kim")

# A record as a feed delivers it: a JSON object (a defective one may hold any JSON value where a field should be).
Record: TypeAlias = dict[str, Any]


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
    simultaneous_claim: float = 0.5  # per shared step trainer: both customers register it at the same millisecond
    # per customer (not one taking a device over): its step trainer and phone read before it registered, as a
    # quarter of a session (the public STEDI export has 19% of its step readings before their holder registered)
    early_readings: float = 0.25
    time_stamp_spelling: float = 0.25  # per customer: the phone export spells the field timeStamp
    email_variant: float = 0.1  # per customer: records and readings spell the e-mail in other cases and spaces
    exact_tie: float = 0.02  # per customer: the current record again, same times, other consent (+ each file's last)
    malformed_consent: float = 0.02  # per consenting customer: a newer record with a malformed research consent
    future_consent: float = 0.02  # per consenting customer: research consent dated in the future
    device_move: float = 0.02  # per customer: hands the step trainer on to the next customer (who consents)
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
    fake_gzip_files: int = 1  # a plain text file named .GZ (codec suffixes count in any case): quarantined whole
    # A bzip2 copy of a file (name.json.bz2): Spark would decompress it, the project reads only gzip and plain
    # text, so it is quarantined whole (unsupported_compression) and its lines, already delivered, not read twice.
    bzip2_files: int = 1


_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


def identity(email: str) -> str:
    """Whose an e-mail is: without the spaces around it, ASCII letters in lower case (other letters as they are,
    as the lake's identity key has them)."""
    return email.strip("".join(EMAIL_SPACES)).translate(_ASCII_LOWER)


def arrival_ms(file_index: int) -> int:
    """When a customer-NNNN file arrives: in blocks of three, the first arrives after the other two, which arrive
    together (file 0 after files 1 and 2, which tie; file 3 after them all...), so file-name order is not arrival
    order, and two files can arrive at the same time."""
    block, place = divmod(file_index, 3)
    return ARRIVAL_BASE + (3 * block + (2 if place == 0 else 1)) * ARRIVAL_STEP_MS


class Claim(NamedTuple):
    """A customer's hold on a device, as their records state it: from `start` until `end` (None: still)."""

    serial: str
    start: int
    end: int | None


class Entry(NamedTuple):
    """One delivered record of a customer (accepted, or quarantined with a readable e-mail), for the recency order."""

    time: int  # lastUpdateDate; a quarantined record's unreadable one: its file's arrival
    registered: int  # registrationDate; a quarantined record's unreadable one: its time
    file: int  # index of the customer landing file it is in
    line: int  # order of delivery within the files (only its order within one file counts)
    consent: int | None  # research consent (None: withholds; always None for a quarantined record)
    accepted: bool


@dataclass
class Customer:
    index: int
    email: str
    serial: str  # the device whose readings this customer sends
    registered: int  # registrationDate: the first record's claim starts then
    consent: int | None  # research consent of the generated current record, epoch ms
    reading_times: list[int]
    step_times: list[int]  # step readings of this customer's device (paired and unpaired)
    claims: list[Claim]  # every device the customer's accepted records claim, and when
    sends_steps: bool = True  # of customers sharing a device, only the first one's device sends readings
    current: Record = field(default_factory=dict)  # the generated current record
    story: str = "plain"  # gives (a device), receives (one), future_consent, malformed_consent, exact_tie, plain
    spelled: bool = False  # spells the e-mail in other cases and surrounding spaces
    late: list[Record] = field(default_factory=list)  # records delivered with the next customer
    gives: tuple[str, int] | None = None  # (serial, time) the next customer takes this customer's device over
    # (serial, time) of readings of a device the customer claims at another time than the reading's: a giver's
    # new device tested before it was theirs, a receiver's old device after they put it away
    stray: list[tuple[str, int]] = field(default_factory=list)
    sent: list[tuple[str, int]] = field(default_factory=list)  # (serial, time) of every step reading written
    giver: Customer | None = None  # the customer whose device this one took over
    entries: list[Entry] = field(default_factory=list)
    current_file: int = -1
    story_cases: list[str] = field(default_factory=list)  # cases seen while writing, counted by expect
    effective_consent: int | None = None  # research consent the pipeline must see (set by expect)
    curated: set[str] = field(default_factory=set)  # consent policies under which the customer is curated (expect)

    @property
    def identity(self) -> str:
        return identity(self.email)
