"""Generated lakes and materializations shared by the graph tests."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import boto3
from dagster import DagsterInstance, ExecuteInProcessResult, materialize

from stedi_assets.assets import ZONE_ASSETS
from stedi_assets.checks import contract_checks
from stedi_assets.cli.sample import Rates, generate
from stedi_assets.definitions import build_resources
from stedi_assets.settings import Settings
from stedi_assets.transforms.readings import ConsentPolicy

# Defects far more often than in real feeds, so that a lake of a few dozen customers has every kind.
DEFECTIVE = Rates(
    duplicate_line=0.05,
    malformed_line=0.03,
    wrong_type=0.03,
    missing_field=0.03,
    unknown_user=0.05,
    unknown_device=0.05,
    shared_device=0.1,
    withdrawn=0.15,
    no_consent=0.15,
    email_variant=0.2,
    exact_tie=0.1,
    malformed_consent=0.1,
    future_consent=0.1,
    device_move=0.1,
)
TEST_KEY = "test-pseudonym-key"  # set as STEDI_PSEUDONYM_KEY by the test session (conftest)


def generate_lake(root: Path, customers: int = 40, seed: int = 11) -> dict:
    return generate(root, customers=customers, seed=seed, readings=12, files=3, rates=DEFECTIVE)


def upload(local: Path, bucket: str, prefix: str) -> None:
    """Copies a local lake to s3://bucket/prefix (the S3 server of the test session)."""
    client = boto3.client("s3")
    for path in local.rglob("*"):
        if path.is_file():
            client.upload_file(str(path), bucket, f"{prefix}/{path.relative_to(local)}")


def materialize_lake(
    root: Path | str, policy: ConsentPolicy, instance: DagsterInstance, base: Settings | None = None
) -> ExecuteInProcessResult:
    """Every asset and check in one real run; `base` carries other settings (e.g. an S3 endpoint)."""
    resources = build_resources(replace(base or Settings(), lake_root=str(root), consent_policy=policy))
    return materialize([*ZONE_ASSETS, *contract_checks], resources=resources, instance=instance, raise_on_error=False)
