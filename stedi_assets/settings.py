"""Configuration from the environment: every setting the project reads, in one place."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from stedi_assets.resources.storage import is_s3
from stedi_assets.transforms.readings import ConsentPolicy

SAMPLE_LAKE = Path(__file__).resolve().parent.parent / "sample_lake"
# The pseudonym key is deliberately not a Setting: it reaches the Privacy resource only as
# EnvVar("STEDI_PSEUDONYM_KEY"), so no config, log or UI page holds its value.
PSEUDONYM_KEY_ENV = "STEDI_PSEUDONYM_KEY"
# Clearly not a secret: used only when STEDI_PSEUDONYM_KEY is unset, with a warning in the run log.
DEVELOPMENT_PSEUDONYM_KEY = "stedi-development-key-not-for-production"


class SettingsError(ValueError):
    """A setting has a value the project cannot use."""


@dataclass(frozen=True)
class Settings:
    lake_root: str = ""
    consent_policy: ConsentPolicy = ConsentPolicy.SINCE
    spark_master: str = "local[*]"
    spark_conf: dict[str, str] = field(default_factory=dict)
    # Where an s3:// lake lives; credentials are never settings: boto3 and Spark read them from the environment.
    aws_endpoint_url: str = ""
    aws_region: str = ""
    sensor_interval_seconds: int = 30

    @property
    def uses_sample_lake(self) -> bool:
        return not self.lake_root

    @property
    def uses_s3(self) -> bool:
        return is_s3(self.lake_root)

    @property
    def lake_root_or_sample(self) -> str:
        return self.lake_root or str(SAMPLE_LAKE)


def from_env(env: dict[str, str] | None = None) -> Settings:
    env = dict(os.environ) if env is None else env
    policy = env.get("STEDI_CONSENT_POLICY", ConsentPolicy.SINCE.value).strip().lower()
    try:
        consent_policy = ConsentPolicy(policy)
    except ValueError:
        choices = ", ".join(p.value for p in ConsentPolicy)
        raise SettingsError(f"STEDI_CONSENT_POLICY={policy!r} is not one of: {choices}") from None
    raw_conf = env.get("STEDI_SPARK_CONF", "").strip()
    try:
        spark_conf = {str(k): str(v) for k, v in json.loads(raw_conf).items()} if raw_conf else {}
    except (json.JSONDecodeError, AttributeError):
        raise SettingsError(f"STEDI_SPARK_CONF must be a JSON object of Spark settings, got {raw_conf!r}") from None
    interval = env.get("STEDI_SENSOR_INTERVAL_SECONDS", "30").strip()
    if not interval.isdigit() or int(interval) < 1:
        raise SettingsError(f"STEDI_SENSOR_INTERVAL_SECONDS must be a whole number of seconds, got {interval!r}")
    return Settings(
        lake_root=env.get("STEDI_LAKE_ROOT", "").strip().rstrip("/"),
        consent_policy=consent_policy,
        spark_master=env.get("STEDI_SPARK_MASTER", "").strip() or "local[*]",
        spark_conf=spark_conf,
        aws_endpoint_url=env.get("AWS_ENDPOINT_URL", "").strip(),
        aws_region=(env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "").strip(),
        sensor_interval_seconds=int(interval),
    )
