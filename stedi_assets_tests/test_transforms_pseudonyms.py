"""Pseudonyms are computed in the driver: Python's hmac for the distinct subjects, joined into Spark as data."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest
from pyspark.sql import SparkSession

from stedi_assets.tables import ACCELEROMETER_TRUSTED, CUSTOMER_LANDING, STEP_TRAINER_TRUSTED
from stedi_assets.transforms.machine_learning import classify_machine_learning_curated
from stedi_assets.transforms.pseudonyms import key_fingerprint, subject_keys, subjects_frame
from stedi_assets_tests.builders import ALICE, accelerometer, customer, frame, step_reading

IDENTITY_KEYS = ["alice@example.com", "", "zoë@exämple.com", "用户@例子.中国", "emoji😀@example.com"]
KEYS = [b"", b"k", b"\x00\xff" * 16, bytes(range(64)), bytes(range(65)), b"long key " * 20]
KEY_IDS = ["empty", "one-byte", "binary-32", "block-size-64", "block-size-plus-one-65", "long-180"]
SECRET = b"a-secret-pseudonym-key-0123456789"


def key_forms(key: bytes) -> list[str]:
    """How a key could show up in printed text: itself, hex, base64, and its HMAC pads (key XOR 0x36 / 0x5c)."""
    padded = key.ljust(64, b"\0")
    pads = [bytes(b ^ 0x36 for b in padded), bytes(b ^ 0x5C for b in padded)]
    forms = [key.decode("latin-1"), base64.b64encode(key).decode()]
    for value in [key, *pads]:
        forms += [value.hex(), value.hex().upper()]
    return forms


@pytest.mark.parametrize("key", KEYS, ids=KEY_IDS)
def test_subject_keys_are_the_hmac_sha256_of_each_identity_key(key: bytes) -> None:
    expected = {k: hmac.new(key, k.encode("utf-8"), hashlib.sha256).hexdigest() for k in IDENTITY_KEYS}
    assert subject_keys(IDENTITY_KEYS + IDENTITY_KEYS[:2], key) == expected


def test_the_key_is_in_no_plan_of_the_training_table(spark: SparkSession) -> None:
    subjects = subjects_frame(spark, subject_keys([ALICE], SECRET))
    classified = classify_machine_learning_curated(
        frame(spark, STEP_TRAINER_TRUSTED.schema, [step_reading()]),
        frame(spark, ACCELEROMETER_TRUSTED.schema, [accelerometer()]),
        frame(spark, CUSTOMER_LANDING.schema, [customer()]),
        subjects,
    )
    assert classified.select("subject_key").collect()[0][0] == hmac.new(SECRET, ALICE.encode(), "sha256").hexdigest()
    plans = classified._jdf.queryExecution().toString()  # parsed, analyzed, optimized and physical plans
    assert "subject_key" in plans
    assert not [form for form in key_forms(SECRET) if form in plans]


def test_key_fingerprint_tells_keys_apart_without_showing_them() -> None:
    fingerprints = {key: key_fingerprint(key) for key in [*KEYS, SECRET]}
    assert len(set(fingerprints.values())) == len(fingerprints)
    assert key_fingerprint(SECRET) == fingerprints[SECRET]
    for key, fingerprint in fingerprints.items():
        assert len(fingerprint) == 16 and int(fingerprint, 16) >= 0
        # Not a piece of the key in any printed form (a fingerprint that were the key's hex prefix would be).
        assert not [form for form in key_forms(key) if fingerprint.lower() in form.lower()]
