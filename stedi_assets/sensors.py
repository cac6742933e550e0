"""The landing sensor: new or rewritten landing files request a run of their feed and everything downstream.

The cursor holds a fingerprint of every landing file seen (size and mtime locally, size and ETag on S3), so
a new file and a file rewritten in place both trigger, and a file already processed never triggers again
(dagster-aws's get_s3_keys, which only looks past the last key, misses rewrites). One run request per tick
covers every changed feed; its run_key is derived from the batch and its tags name the files.
"""

import hashlib
import json

from dagster import (
    AssetSelection,
    DefaultSensorStatus,
    RunRequest,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from stedi_assets.assets import ZONE_ASSETS
from stedi_assets.resources.storage import list_files
from stedi_assets.tables import LANDING_TABLES

MAX_FILES_IN_TAG = 20


def changed_files(seen: dict[str, str], current: dict[str, str]) -> list[str]:
    return sorted(path for path, fingerprint in current.items() if seen.get(path) != fingerprint)


def landing_sensor(lake_root: str, minimum_interval_seconds: int) -> SensorDefinition:
    @sensor(
        name="landing_files",
        description=f"New or rewritten files under {lake_root}/{{entity}}/landing/ rerun that feed and downstream.",
        target=AssetSelection.assets(*(t.name for t in LANDING_TABLES)).downstream().required_multi_asset_neighbors(),
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=DefaultSensorStatus.RUNNING,
    )
    def landing_files(context: SensorEvaluationContext) -> SensorResult | SkipReason:
        seen: dict[str, dict[str, str]] = json.loads(context.cursor) if context.cursor else {}
        current = {t.name: list_files(f"{lake_root}/{t.path}") for t in LANDING_TABLES}
        changed = {name: changed_files(seen.get(name, {}), files) for name, files in current.items()}
        changed = {name: files for name, files in changed.items() if files}
        if not changed:
            return SkipReason(f"no new or rewritten landing file under {lake_root}")
        batch = {path: current[name][path] for name, paths in changed.items() for path in paths}
        run_key = hashlib.sha256(json.dumps(batch, sort_keys=True).encode()).hexdigest()[:20]
        names = sorted(path.rsplit("/", 1)[-1] for path in batch)
        tags = {
            "stedi/landing_feeds": ",".join(sorted(changed)),
            "stedi/landing_file_count": str(len(batch)),
            "stedi/landing_files": ",".join(names[:MAX_FILES_IN_TAG])
            + (",..." if len(names) > MAX_FILES_IN_TAG else ""),
        }
        selection = AssetSelection.assets(*changed).downstream().required_multi_asset_neighbors()
        request = RunRequest(run_key=run_key, asset_selection=sorted(selection.resolve(ZONE_ASSETS)), tags=tags)
        return SensorResult(run_requests=[request], cursor=json.dumps(current, sort_keys=True))

    return landing_files
