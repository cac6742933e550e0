"""The dataset card of the training table (`machine_learning_curated`): what a data scientist needs beside its rows.

One card per table version: its figures (rows, subjects, the reading times' range, the sampling as observed), the
settings it was computed under (consent policy, pseudonym key fingerprint, from its commit's `stedi.*` metadata),
its columns (types from the version's schema; meaning and unit from the contract, the one place they are
declared), its known limits and how to split it. `figures` computes them from a version with delta-rs and pyarrow
in the driver, no Spark, reading two columns in record batches; `markdown` and `as_json` only render them. The
same card is the asset's materialization metadata (assets/curated.py) and the `DATASET.md` / `dataset.json`
that `stedi export` writes beside the rows, so the UI and an export of one version say the same.
No Dagster here.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from deltalake import DeltaTable

from stedi_assets.contracts import column_docs, column_units
from stedi_assets.lake.store import LakeStore, MissingTableError
from stedi_assets.sample.world import EXPECTED_FILE
from stedi_assets.tables import MACHINE_LEARNING_CURATED

TABLE = MACHINE_LEARNING_CURATED
SUBJECT = "subject_key"
TIME = "sensorReadingTime"
CARD_MARKDOWN = "DATASET.md"
CARD_JSON = "dataset.json"
CARD_FORMAT = 1  # dataset.json's layout; raised when a key changes meaning
# At most this many (subject, time) pairs are held at once to compute the intervals: a bigger table is read in
# more passes (subjects split into groups), so memory stays flat whatever the table's size.
PASS_ROWS = 4_000_000
BATCH_ROWS = 256 * 1024

CONSENT_MEANINGS = {
    "since": "only readings taken at or after the customer's research consent (`shareWithResearchAsOfDate`);"
    " readings from before it are left out",
    "flag": "every reading of a customer whose current record consents to research, readings taken before the"
    " consent date included",
}
SPLIT_ADVICE = (
    "Split train, validation and test sets by `subject_key`, never by row: the readings of one subject are"
    " correlated (one person and their device, readings milliseconds apart), so a split by row puts the same subject"
    " on both sides and overstates how well a model generalises to new people. For example scikit-learn's"
    " `GroupShuffleSplit(test_size=0.2).split(frame, groups=frame.subject_key)`, or a rule on the key itself:"
    " `int(subject_key[:8], 16) % 5 == 0` for the test set (the key is a uniform hash: about 20% of subjects)."
)


@dataclass(frozen=True)
class Spread:
    """The smallest, median (statistics.median's: the mean of the two middle values of an even count) and largest."""

    min: int
    median: float
    max: int


@dataclass(frozen=True)
class ColumnDoc:
    name: str
    type: str  # the Arrow type of the version's schema, as pandas or pyarrow read the Parquet files
    unit: str
    meaning: str


@dataclass(frozen=True)
class Figures:
    """What the card says about one version of the table."""

    table: str
    version: int
    committed_at: str  # ISO 8601, UTC
    rows: int
    subjects: int  # distinct subject_key
    first_reading: str | None  # min / max sensorReadingTime, ISO 8601 UTC; None for an empty table
    last_reading: str | None
    readings_per_subject: Spread | None
    # Between consecutive distinct reading times of one subject, in milliseconds, over all subjects.
    interval_ms: Spread | None
    intervals: int
    # Rows at a (subject, millisecond) an earlier row of the version already has: a step-trainer reading paired
    # with several accelerometer readings of that millisecond.
    repeated_times: int
    consent_policy: str | None  # None: the version's commit does not record it (committed before it was)
    key_fingerprint: str | None
    generated: bool  # the lake was made by `stedi sample`
    columns: tuple[ColumnDoc, ...]


def figures(store: LakeStore, version: int | None = None) -> Figures:
    """The card's figures of a version of the table (the current one unless given).

    Raises MissingTableError before the table's first commit, ValueError for a version the table never had,
    FileNotFoundError (or another OSError) for a version whose files were vacuumed."""
    delta = store.delta(TABLE)
    latest = delta.open()
    if latest is None:
        raise MissingTableError(f"{TABLE.name} has not been materialized yet (no table at {delta.uri})")
    current = latest.version()
    version = current if version is None else version
    if not 0 <= version <= current:
        raise ValueError(f"{TABLE.name} has no version {version} (its versions are 0 to {current})")
    table = latest if version == current else delta.open(version)
    snapshot = delta.snapshot(version)
    assert table is not None and snapshot is not None, f"{TABLE.name} version {version} was just found"
    counts, rows, first, last = _subject_counts(table)
    intervals, repeated = _intervals(table, counts)
    schema = snapshot.schema or pa.schema([])
    docs, units = column_docs(TABLE.model), column_units(TABLE.model)
    return Figures(
        table=TABLE.name,
        version=version,
        committed_at=iso_utc(int(delta.commit_info(version)["timestamp"])),
        rows=rows,
        subjects=len(counts),
        first_reading=None if first is None else iso_utc(first),
        last_reading=None if last is None else iso_utc(last),
        readings_per_subject=spread_of(Counter(counts.values())),
        interval_ms=spread_of(intervals),
        intervals=sum(intervals.values()),
        repeated_times=repeated,
        consent_policy=snapshot.metadata.get("stedi.consent_policy"),
        key_fingerprint=snapshot.metadata.get("stedi.pseudonym_key_fingerprint"),
        generated=store.storage.stat(f"{store.uri}/{EXPECTED_FILE}") is not None,
        columns=tuple(
            ColumnDoc(
                name,
                str(schema.field(name).type) if name in schema.names else TABLE.schema[name].dataType.simpleString(),
                units.get(name, ""),
                docs.get(name, ""),
            )
            for name in TABLE.columns
        ),
    )


def _batches(table: DeltaTable, columns: list[str]) -> Iterator[pa.RecordBatch]:
    """The version's rows, a few columns, one record batch at a time."""
    yield from table.to_pyarrow_dataset().to_batches(columns=columns, batch_size=BATCH_ROWS)


def _subject_counts(table: DeltaTable) -> tuple[dict[str, int], int, int | None, int | None]:
    """Rows per subject, rows, and the earliest and latest reading time, in one pass."""
    counts: Counter[str] = Counter()
    rows, first, last = 0, None, None
    for batch in _batches(table, [SUBJECT, TIME]):
        rows += batch.num_rows
        found = pc.value_counts(batch.column(SUBJECT).cast(pa.string()))
        for subject, count in zip(found.field("values").to_pylist(), found.field("counts").to_pylist(), strict=True):
            counts[str(subject)] += int(count or 0)  # the contract holds subject_key not null
        extremes = pc.min_max(batch.column(TIME))
        low, high = extremes["min"].as_py(), extremes["max"].as_py()
        if low is not None and high is not None:
            first = low if first is None else min(first, low)
            last = high if last is None else max(last, high)
    return dict(counts), rows, first, last


def _groups(counts: dict[str, int], limit: int) -> list[list[str]]:
    """The subjects (sorted) in groups of at most `limit` rows each (a subject with more rows: a group alone)."""
    groups: list[list[str]] = [[]]
    held = 0
    for subject in sorted(counts):
        if groups[-1] and held + counts[subject] > limit:
            groups.append([])
            held = 0
        groups[-1].append(subject)
        held += counts[subject]
    return groups


def _intervals(table: DeltaTable, counts: dict[str, int]) -> tuple[Counter[int], int]:
    """How often each interval (ms) between consecutive distinct reading times of a subject occurs, and how many
    rows repeat a (subject, time) of an earlier row. One pass per group of subjects."""
    intervals: Counter[int] = Counter()
    repeated = 0
    groups = _groups(counts, PASS_ROWS) if counts else []
    for group in groups:
        keys = pa.array(group, pa.string())
        subjects: list[np.ndarray[Any, Any]] = []
        times: list[np.ndarray[Any, Any]] = []
        for batch in _batches(table, [SUBJECT, TIME]):
            index = pc.index_in(batch.column(SUBJECT).cast(pa.string()), value_set=keys)
            mine = pc.is_valid(index)
            subjects.append(pc.filter(index, mine).to_numpy(zero_copy_only=False).astype(np.int64))
            times.append(pc.filter(batch.column(TIME), mine).to_numpy(zero_copy_only=False).astype(np.int64))
        subject, time = np.concatenate(subjects), np.concatenate(times)
        order = np.lexsort((time, subject))
        subject, time = subject[order], time[order]
        steps = np.diff(time)[subject[1:] == subject[:-1]]
        repeated += int(np.count_nonzero(steps == 0))
        values, occurrences = np.unique(steps[steps > 0], return_counts=True)
        intervals.update(dict(zip(values.tolist(), occurrences.tolist(), strict=True)))
    return intervals, repeated


def spread_of(occurrences: Counter[int]) -> Spread | None:
    """min, median and max of the values counted (value -> how often), without listing them; None if none."""
    total = sum(occurrences.values())
    if not total:
        return None
    low, high = (total - 1) // 2, total // 2  # the middle positions (one, for an odd count)
    middle: list[int] = []
    seen = 0
    for value in sorted(occurrences):
        seen += occurrences[value]
        middle += [value] * ((low < seen) + (high < seen) - len(middle))
        if len(middle) == 2:
            break
    median = (middle[0] + middle[1]) / 2
    return Spread(min(occurrences), int(median) if median.is_integer() else median, max(occurrences))


def iso_utc(epoch_ms: int) -> str:
    """Epoch milliseconds as ISO 8601 in UTC, to the millisecond: 2022-06-18T15:00:44.000Z."""
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=epoch_ms)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def known_limits(card: Figures) -> list[str]:
    """What the rows cannot tell, in sentences."""
    limits = []
    if card.generated:
        limits.append(
            "Generated data: this lake was made by `stedi sample` (synthetic customers, devices and readings, with"
            " defects injected at set rates). Its figures say nothing about real users."
        )
    limits += [
        "Pairing is on the exact millisecond: a step-trainer reading is kept only when its holder's phone has an"
        " accelerometer reading at the same `sensorReadingTime`; there is no tolerance window and no"
        " interpolation, so readings a few milliseconds apart are lost, and a step-trainer reading with several"
        " accelerometer readings at that millisecond gives one row each.",
        _consent_limit(card.consent_policy),
        "A customer who withdraws consent or asks for erasure leaves the table, and its older versions are made"
        " unreadable; copies made with `stedi export` are not reached: discard them and export again.",
        "No device is named: the table holds no serial number (it would link readings back to a customer), so"
        " readings cannot be told apart by device; a subject who changed step trainer has the readings of each.",
        "`subject_key` is a pseudonym under the pseudonym key: another key (see its fingerprint) gives other keys"
        " for the same people, so keys of tables made under different fingerprints do not match.",
    ]
    return limits


def _consent_limit(policy: str | None) -> str:
    meaning = CONSENT_MEANINGS.get(policy or "")
    if meaning is None:
        return (
            "Consent: every subject's current record consents to research; which of their readings count (the"
            " consent policy) is not recorded with this version."
        )
    return (
        f"Consent (policy `{policy}`): only customers whose current record consents to research, and {meaning}."
        " A consent dated after the run that computed the version did not count yet."
    )


def _number(value: float) -> str:
    return f"{value:,}" if isinstance(value, int) else f"{value:,.1f}"


def _spread(spread: Spread | None, unit: str = "") -> str:
    if spread is None:
        return "none"
    return f"min {_number(spread.min)}{unit}, median {_number(spread.median)}{unit}, max {_number(spread.max)}{unit}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown(card: Figures) -> str:
    """The card as Markdown: DATASET.md, and the asset's `dataset_card` metadata in the UI."""
    readings = "none" if card.first_reading is None else f"{card.first_reading} to {card.last_reading}"
    policy = (
        "not recorded with this version"
        if card.consent_policy is None
        else f"`{card.consent_policy}`: {CONSENT_MEANINGS.get(card.consent_policy, 'unknown policy')}"
    )
    facts = [
        ("table version", f"{card.version}, committed {card.committed_at}"),
        ("rows", _number(card.rows)),
        ("subjects (distinct `subject_key`)", _number(card.subjects)),
        ("reading times (`sensorReadingTime`, UTC)", readings),
        ("consent policy", policy),
        ("pseudonym key fingerprint", "not recorded" if card.key_fingerprint is None else f"`{card.key_fingerprint}`"),
    ]
    lines = [
        f"# {card.table}, version {card.version}",
        "",
        _cell(TABLE.description),
        "",
        "| | |",
        "|---|---|",
        *(f"| {name} | {_cell(value)} |" for name, value in facts),
        "",
        "## Columns",
        "",
        "| column | type | unit | meaning |",
        "|---|---|---|---|",
        *(f"| `{c.name}` | {c.type} | {_cell(c.unit) or '-'} | {_cell(c.meaning)} |" for c in card.columns),
        "",
        "## Sampling, as observed",
        "",
        f"- Readings per subject: {_spread(card.readings_per_subject)}.",
        f"- Interval between consecutive readings of a subject: {_spread(card.interval_ms, ' ms')}"
        f" ({_number(card.intervals)} intervals; gaps between sessions included).",
        f"- Rows at a millisecond the same subject already has a row at: {_number(card.repeated_times)}.",
        "",
        "## Known limits",
        "",
        *(f"- {limit}" for limit in known_limits(card)),
        "",
        "## Splitting",
        "",
        SPLIT_ADVICE,
        "",
        "`stedi export` writes this version's rows under `data/` beside this card (`DATASET.md`, `dataset.json`).",
        "",
    ]
    return "\n".join(lines)


def as_json(card: Figures) -> dict[str, Any]:
    """The card as JSON-able data: dataset.json."""
    data = asdict(card)
    data["consent_policy"] = (
        None
        if card.consent_policy is None
        else {"name": card.consent_policy, "meaning": CONSENT_MEANINGS.get(card.consent_policy)}
    )
    return {
        "card_format": CARD_FORMAT,
        **data,
        "known_limits": known_limits(card),
        "split_advice": SPLIT_ADVICE,
    }


def json_text(card: Figures) -> str:
    return json.dumps(as_json(card), indent=2, ensure_ascii=False) + "\n"


def files(card: Figures) -> Iterable[tuple[str, str]]:
    """The card's files: (name, text)."""
    return [(CARD_MARKDOWN, markdown(card)), (CARD_JSON, json_text(card))]
