"""The pseudonym key stays secret: a real run in a process of its own with Spark's event log on (test_cli's run of
the Dagster CLI), then every form of the key is searched for in the event log, the Dagster instance, the run's
output and the lake."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pyarrow as pa
import pytest
from dagster import AssetKey, DagsterInstance

from stedi_assets.tables import MACHINE_LEARNING_CURATED
from stedi_assets.transforms.pseudonyms import key_fingerprint
from stedi_assets_tests import lakes
from stedi_assets_tests.lakes import gunzipped

KEY = "k3y-" + os.urandom(12).hex()  # the scanner's own test key; the run has its own
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
def run(tmp_path_factory: pytest.TempPathFactory) -> lakes.CliRun:
    """A real run in a process of its own (the Dagster CLI's, shared with test_cli), with a key of its own and
    Spark's event log on (compressed, as by default)."""
    run = lakes.cli_run(tmp_path_factory)
    assert run.done.returncode == 0, (run.done.stdout + run.done.stderr)[-3000:]
    return run


@pytest.mark.graph
def test_the_event_log_was_written_and_holds_the_plans(run: lakes.CliRun) -> None:
    logs = [p for p in run.events.rglob("*") if p.is_file()]
    assert logs and any(b"SparkListenerSQLExecutionStart" in readable(p) for p in logs)


@pytest.mark.graph
@pytest.mark.parametrize("place", ["events", "home", "lake"])
def test_no_form_of_the_key_is_in_any_file(run: lakes.CliRun, place: str) -> None:
    """The event log (every plan), the Dagster instance (events, run config, logs) and the lake."""
    assert leaks(getattr(run, place), run.key.encode()) == []


@pytest.mark.graph
def test_no_form_of_the_key_is_in_the_runs_output(run: lakes.CliRun) -> None:
    """Its stdout and stderr: the Dagster CLI prints every event of the run (metadata included)."""
    output = readable(run.output)
    assert b"machine_learning_curated" in output
    assert [name for name, form in forms(run.key.encode()).items() if form in output] == []


@pytest.mark.graph
def test_the_training_table_records_the_keys_fingerprint(run: lakes.CliRun) -> None:
    with DagsterInstance.from_config(str(run.home)) as instance:
        (record,) = instance.get_run_records()
        materialization = instance.get_latest_materialization_event(AssetKey(MACHINE_LEARNING_CURATED.name))
    metadata = materialization.asset_materialization.metadata
    assert metadata["pseudonym_key_fingerprint"].value == key_fingerprint(run.key.encode())
    assert metadata["pseudonym_key_fingerprint"].value != key_fingerprint(b"another key")
    assert run.key not in json.dumps(record.dagster_run.run_config)
