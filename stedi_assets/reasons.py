"""Why a row was dropped or kept aside: the reason vocabulary of classified frames and quarantine tables.

Every classified frame has a `reason` column (null when the row is kept) and a `detail`; filter reasons drop a row
on purpose (counted), quarantine reasons keep it aside for review. No imports: the table registry, the transforms
and the checks all name reasons from here.
"""

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
# The serial's holders had let it go by the reading's time (a newer record names another serial) and nobody had
# taken it; a reading before every claim belongs to the first holder.
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

# A symbolic link in a local landing folder: never followed (it could point at any file the process can read).
SYMLINK = "symlink"
# Compressed with a codec Spark would pick by the name (bzip2, zstd, ...) but this project does not read.
UNSUPPORTED_COMPRESSION = "unsupported_compression"
# A name Spark cannot be given as a path that reads this object: a colon with a glob character in the path (Hadoop
# takes the colon for a URI scheme), an S3 key with an empty folder name (`a//b`: Hadoop collapses it), not UTF-8.
UNSUPPORTED_NAME = "unsupported_name"
# An object that is no file: an S3 folder marker (a key ending in /) that holds bytes (empty ones are skipped), or a
# local named pipe, socket or device (never opened: reading one can block or never end).
NOT_A_FILE = "not_a_file"

FILE_REASONS = frozenset(
    {UNREADABLE_FILE, CORRUPT_FILE, CHANGED_FILE, SYMLINK, UNSUPPORTED_COMPRESSION, UNSUPPORTED_NAME, NOT_A_FILE}
)
QUARANTINE_REASONS = frozenset(
    {NOT_JSON, DUPLICATE_KEY, MISSING_FIELD, WRONG_TYPE, INVALID_VALUE, AMBIGUOUS_DEVICE_OWNER, *FILE_REASONS}
)
