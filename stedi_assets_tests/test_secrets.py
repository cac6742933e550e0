"""The pseudonym key stays secret: a real run with Spark's event log on, then every form of the key is searched
for in the event log, the Dagster instance, the run's output and the lake."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest
from dagster import AssetKey, DagsterInstance

from stedi_assets.services import stack
from stedi_assets.tables import MACHINE_LEARNING_CURATED
from stedi_assets.transforms.pseudonyms import key_fingerprint
from stedi_assets_tests.lakes import generate_lake, gunzipped

REPO = Path(__file__).resolve().parent.parent
KEY = "k3y-" + os.urandom(12).hex()
BLOCK = 64  # SHA-256's block: the HMAC pads are the key, zero-padded to it, XORed with 0x36 and 0x5c


def forms(key: bytes) -> dict[str, bytes]:
    """Every spelling of the key (and of the HMAC pads derived from it) that could give it away."""
    padded = key.ljust(BLOCK, b"\0")
    raw = {
        "key": key,
        "inner pad": bytes(b ^ 0x36 for b in padded),
        "outer pad": bytes(b ^ 0x5C for b in padded),
    }
    found: dict[str, bytes] = {}
    for name, value in raw.items():
        core = value if name == "key" else value[: len(key)]  # the part of a pad that depends on the key
        found[name] = core
        found[f"{name}, hex"] = core.hex().encode()
        found[f"{name}, HEX"] = core.hex().upper().encode()
        # base64 inside a longer blob starts at any of three byte offsets: search each alignment's stable middle.
        for shift in range(3):
            encoded = base64.b64encode(b"\0" * shift + core)[4:-4]
            found[f"{name}, base64 (offset {shift})"] = encoded
            found[f"{name}, base64url (offset {shift})"] = encoded.replace(b"+", b"-").replace(b"/", b"_")
    return found


def readable(path: Path) -> bytes:
    """A file's bytes, decompressed where it is compressed (Spark 4 event logs are zstd by default)."""
    data = path.read_bytes()
    if path.suffix == ".zstd" or data[:4] == b"\x28\xb5\x2f\xfd":
        with pa.CompressedInputStream(pa.BufferReader(data), "zstd") as stream:
            return stream.read()
    if data[:2] == b"\x1f\x8b":  # the raw bytes too: a broken .gz decompresses only in part
        return data + gunzipped(data)
    return data


def leaks(root: Path, key: bytes) -> list[str]:
    spellings = forms(key)
    found = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        data = readable(path)
        found += [f"{path}: {name}" for name, form in spellings.items() if form in data]
    return found


def test_the_scanner_finds_a_key_hidden_in_a_compressed_pad(tmp_path: Path) -> None:
    """Without this, a search that finds nothing would prove nothing."""
    pad = forms(KEY.encode())["outer pad, hex"]
    with pa.CompressedOutputStream(str(tmp_path / "app.zstd"), "zstd") as out:
        out.write(b'{"Physical Plan": "... X' + pad + b'X ..."}')
    (tmp_path / "config.json").write_text(json.dumps({"b": base64.b64encode(b"ab" + KEY.encode()).decode()}))
    (tmp_path / "clean.txt").write_text("nothing secret here")
    found = {tuple(leak.split(": ")) for leak in leaks(tmp_path, KEY.encode())}
    assert {
        (str(tmp_path / "app.zstd"), "outer pad, hex"),
        (str(tmp_path / "config.json"), "key, base64 (offset 2)"),
    } <= found
    assert {path for path, _ in found} == {str(tmp_path / "app.zstd"), str(tmp_path / "config.json")}


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> dict[str, Path]:
    """`stedi run` with a known key and Spark's event log on (compressed, as by default)."""
    work = tmp_path_factory.mktemp("secret-run")
    lake, events, home = work / "lake", work / "events", work / "home"
    generate_lake(lake, customers=15)
    events.mkdir()
    conf = {"spark.eventLog.enabled": "true", "spark.eventLog.dir": events.as_uri(), "spark.master": "local[2]"}
    env = {
        **os.environ,
        **stack.dagster_home(home),
        "STEDI_LAKE_ROOT": str(lake),
        "STEDI_PSEUDONYM_KEY": KEY,
        "STEDI_SPARK_CONF": json.dumps(conf),
        "STEDI_SPARK_MASTER": "local[2]",
    }
    done = subprocess.run(
        [str(Path(sys.executable).parent / "stedi"), "run"], cwd=REPO, env=env, capture_output=True, timeout=900
    )
    (work / "output.txt").write_bytes(done.stdout + done.stderr)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    return {"lake": lake, "events": events, "home": home, "output": work / "output.txt"}


def test_the_event_log_was_written_and_holds_the_plans(run) -> None:
    logs = [p for p in run["events"].rglob("*") if p.is_file()]
    assert logs and any(b"SparkListenerSQLExecutionStart" in readable(p) for p in logs)


@pytest.mark.parametrize("place", ["events", "home", "lake"])
def test_no_form_of_the_key_is_in_any_file(run, place: str) -> None:
    """The event log (every plan), the Dagster instance (events, run config, logs) and the lake."""
    assert leaks(run[place], KEY.encode()) == []


def test_no_form_of_the_key_is_in_the_runs_output(run) -> None:
    output = readable(run["output"])
    assert b"machine_learning_curated" in output
    assert [name for name, form in forms(KEY.encode()).items() if form in output] == []


def test_the_training_table_records_the_keys_fingerprint(run) -> None:
    with DagsterInstance.from_config(str(run["home"])) as instance:
        (record,) = instance.get_run_records()
        materialization = instance.get_latest_materialization_event(AssetKey(MACHINE_LEARNING_CURATED.name))
    metadata = materialization.asset_materialization.metadata
    assert metadata["pseudonym_key_fingerprint"].value == key_fingerprint(KEY.encode())
    assert metadata["pseudonym_key_fingerprint"].value != key_fingerprint(b"another key")
    assert KEY not in json.dumps(record.dagster_run.run_config)
