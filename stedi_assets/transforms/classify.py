"""The classified-frame convention shared by the transforms."""

from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

REASON = "reason"
DETAIL = "detail"

# Filter reasons: the row is dropped on purpose and counted. Quarantine reasons: it is kept aside for review.
DUPLICATE = "duplicate"
# The line is an erased customer's (an old file delivered again): dropped, and blanked in the raw file.
ERASED = "erased"
BLANK_LINE = "blank_line"
SUPERSEDED = "superseded"
# The customer's newest record was quarantined at landing: the older records lose to it, and the customer does not
# consent until a valid newer record arrives. The detail names the quarantined line (file:line).
SUPERSEDED_BY_QUARANTINED = "superseded_by_quarantined"
NO_CONSENT = "no_consent"
# The current record's research consent starts after the run's as-of time: not consent yet.
FUTURE_CONSENT = "future_consent"
BEFORE_CONSENT = "before_consent"
UNKNOWN_USER = "unknown_user"
UNKNOWN_DEVICE = "unknown_device"
# The serial is claimed by some customer's record, but by none at the reading's time.
NO_OWNER_AT_TIME = "no_owner_at_time"
OWNER_NOT_CURATED = "owner_not_curated"
NO_ACCELEROMETER_READINGS = "no_accelerometer_readings"
NO_ACCELEROMETER_MATCH = "no_accelerometer_match"
NOT_JSON = "not_json"
MISSING_FIELD = "missing_field"
WRONG_TYPE = "wrong_type"
INVALID_VALUE = "invalid_value"
DUPLICATE_KEY = "duplicate_key"
AMBIGUOUS_DEVICE_OWNER = "ambiguous_device_owner"
# Whole-file faults: one quarantine row for the file (line_number null), none for its lines.
UNREADABLE_FILE = "unreadable_file"  # cannot be opened or read: permissions, vanished before the read, I/O error
CORRUPT_FILE = "corrupt_file"  # its compression is broken: truncated .gz, a .gz that is not gzip, CRC mismatch
CHANGED_FILE = "changed_during_read"  # size or modification time changed, or it vanished, while it was read

FILE_REASONS = frozenset({UNREADABLE_FILE, CORRUPT_FILE, CHANGED_FILE})
QUARANTINE_REASONS = frozenset(
    {NOT_JSON, DUPLICATE_KEY, MISSING_FIELD, WRONG_TYPE, INVALID_VALUE, AMBIGUOUS_DEVICE_OWNER, *FILE_REASONS}
)


def first_reason(rules: Sequence[tuple[Column, str, Column | str | None]]) -> tuple[Column, Column]:
    """(reason, detail) columns naming the first rule whose condition holds; null when none does."""
    reason = detail = None
    for condition, name, rule_detail in rules:
        detail_col = F.lit(rule_detail) if rule_detail is None or isinstance(rule_detail, str) else rule_detail
        reason = F.when(condition, F.lit(name)) if reason is None else reason.when(condition, F.lit(name))
        detail = F.when(condition, detail_col) if detail is None else detail.when(condition, detail_col)
    if reason is None:
        return F.lit(None).cast("string"), F.lit(None).cast("string")
    return reason, detail.cast("string")


def duplicate_rank(data_columns: Sequence[str], order_columns: Sequence[str]) -> Column:
    """1 for the first copy of each exact-duplicate group (by `order_columns`), 2.. for the later copies."""
    window = Window.partitionBy(*data_columns).orderBy(*order_columns)
    return F.row_number().over(window)


def kept(classified: DataFrame) -> DataFrame:
    return classified.where(F.col(REASON).isNull())
