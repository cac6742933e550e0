"""A fresh bucket on the test session's S3 server (moto, see stedi_assets_tests/conftest.py)."""

from __future__ import annotations

import os

import boto3
import pytest


@pytest.fixture
def s3_bucket(s3_server: str) -> str:
    bucket = f"lake-{os.urandom(4).hex()}"
    boto3.client("s3").create_bucket(Bucket=bucket)
    return bucket
