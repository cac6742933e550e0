"""The single-machine reference: the baseline's rules (`plain_spark`) in DuckDB SQL over the raw JSON lines.

    python -m benchmarks.duckdb_sql LAKE_ROOT OUT_ROOT

`read_json` with declared columns over each feed's files (lines that are not JSON or have a wrong type give
nulls, then dropped, as in the baseline), the same joins and filters, one Parquet file per table under
OUT_ROOT at the table's registry path. It skips what the baseline skips (see `plain_spark`).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import sys
import time
from pathlib import Path

import duckdb
import pyarrow as pa

from benchmarks.plain_spark import SPACES, TIE_BREAK
from stedi_assets import tables as t

KEY_ENV = "STEDI_PSEUDONYM_KEY"
DEVELOPMENT_KEY = "stedi-bench-development-key"

CUSTOMER_COLUMNS = {
    "customerName": "VARCHAR",
    "email": "VARCHAR",
    "phone": "VARCHAR",
    "birthDay": "VARCHAR",
    "serialNumber": "VARCHAR",
    "registrationDate": "BIGINT",
    "lastUpdateDate": "BIGINT",
    "shareWithResearchAsOfDate": "BIGINT",
    "shareWithPublicAsOfDate": "BIGINT",
    "shareWithFriendsAsOfDate": "BIGINT",
}
READING_COLUMNS = {"user": "VARCHAR", "x": "DOUBLE", "y": "DOUBLE", "z": "DOUBLE"}
STEP_COLUMNS = {"sensorReadingTime": "BIGINT", "serialNumber": "VARCHAR", "distanceFromObject": "INTEGER"}


def landing_files(lake: str, table: t.ZoneTable) -> list[str]:
    """The feed's files, as every reader of the lake takes them: names starting with _ or . are skipped."""
    folder = Path(lake) / table.files_path
    return sorted(str(p) for p in folder.iterdir() if p.is_file() and not p.name.startswith(("_", ".")))


def read_json(files: list[str], columns: dict[str, str]) -> str:
    listed = ", ".join(f"'{f}'" for f in files)
    declared = ", ".join(f"'{name}': '{kind}'" for name, kind in columns.items())
    return f"read_json([{listed}], format = 'newline_delimited', columns = {{{declared}}}, ignore_errors = true)"


USER = '"user"'  # a keyword in DuckDB: quoted


def identity(column: str) -> str:
    """As the baseline's: lower-cased, without the space around it (trim's own set differs between engines)."""
    return f"lower(trim({column}, '{SPACES}'))"


def statements(lake: str, as_of: int) -> list[str]:
    customers = read_json(landing_files(lake, t.CUSTOMER_LANDING), CUSTOMER_COLUMNS)
    phone_files = landing_files(lake, t.ACCELEROMETER_LANDING)
    # JSON keys match case-sensitively and one column list cannot hold both spellings: one scan per spelling.
    readings_lower = read_json(phone_files, {**READING_COLUMNS, "timestamp": "BIGINT"})
    readings_upper = read_json(phone_files, {**READING_COLUMNS, "timeStamp": "BIGINT"})
    steps = read_json(landing_files(lake, t.STEP_TRAINER_LANDING), STEP_COLUMNS)
    columns = ", ".join(f'"{c}"' for c in CUSTOMER_COLUMNS)
    tie_break = ", ".join(f'"{c}" desc nulls last' for c in TIE_BREAK)
    return [
        f"""create temp table customer_current as
            select *, {identity("email")} as _id from {customers}
            where customerName is not null and email is not null and serialNumber is not null
              and registrationDate is not null and lastUpdateDate is not null
            qualify row_number() over (
                partition by {identity("email")}
                order by lastUpdateDate desc, registrationDate desc, shareWithResearchAsOfDate is null desc,
                {tie_break}) = 1""",
        f"""create temp table customer_trusted as select {columns} from customer_current
            where shareWithResearchAsOfDate is not null and shareWithResearchAsOfDate <= {as_of}""",
        f"""create temp table accelerometer_trusted as
            with readings as (
                select "user", "timestamp", x, y, z from {readings_lower} where "timestamp" is not null
                union all
                select "user", "timeStamp", x, y, z from {readings_upper} where "timeStamp" is not null
            ), unique_readings as (
                select distinct {identity(USER)} as _id, "timestamp", x, y, z from readings
                where "user" is not null and x is not null and y is not null and z is not null
            )
            select c.email as "user", r."timestamp", r.x, r.y, r.z
            from unique_readings r
            join (select {identity("email")} as _id, email, shareWithResearchAsOfDate as consent
                  from customer_trusted) c using (_id)
            where r."timestamp" >= c.consent""",
        f"""create temp table customer_curated as select * from customer_trusted
            where {identity("email")} in (select {identity(USER)} from accelerometer_trusted)""",
        f"""create temp table step_trainer_trusted as
            with owners as (
                select serialNumber, min(_id) as _owner from customer_current
                group by serialNumber having count(distinct _id) = 1
            ), readings as (
                select distinct sensorReadingTime, serialNumber, distanceFromObject from {steps}
                where sensorReadingTime is not null and serialNumber is not null and distanceFromObject is not null
            )
            select r.sensorReadingTime, r.serialNumber, r.distanceFromObject
            from readings r
            join owners o using (serialNumber)
            join (select {identity("email")} as _owner, shareWithResearchAsOfDate as consent
                  from customer_curated) c using (_owner)
            where r.sensorReadingTime >= c.consent""",
    ]


MACHINE_LEARNING_CURATED = f"""create temp table machine_learning_curated as
    select s.sensorReadingTime, s.distanceFromObject, a.x, a.y, a.z, k.subject_key
    from step_trainer_trusted s
    join (select serialNumber, {identity("email")} as _owner from customer_curated) o using (serialNumber)
    join (select {identity(USER)} as _owner, "timestamp" as sensorReadingTime, x, y, z
          from accelerometer_trusted) a using (_owner, sensorReadingTime)
    join subjects k using (_owner)"""

TABLES = (
    t.CUSTOMER_TRUSTED,
    t.ACCELEROMETER_TRUSTED,
    t.CUSTOMER_CURATED,
    t.STEP_TRAINER_TRUSTED,
    t.MACHINE_LEARNING_CURATED,
)


def main(lake: str, out: str) -> None:
    con = duckdb.connect()
    for statement in statements(lake, int(time.time() * 1000)):
        con.execute(statement)
    # Pseudonyms in Python, for the curated customers only: the key never enters a query.
    key = os.environ.get(KEY_ENV, DEVELOPMENT_KEY).encode()
    ids = [row[0] for row in con.execute(f"select distinct {identity('email')} from customer_curated").fetchall()]
    subjects = pa.table(
        {"_owner": ids, "subject_key": [hmac.new(key, i.encode(), hashlib.sha256).hexdigest() for i in ids]}
    )
    con.register("subjects", subjects)
    con.execute(MACHINE_LEARNING_CURATED)
    for table in TABLES:
        folder = Path(out) / table.path
        folder.mkdir(parents=True, exist_ok=True)
        con.execute(f"copy {table.name} to '{folder / 'data.parquet'}' (format parquet)")
    con.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
