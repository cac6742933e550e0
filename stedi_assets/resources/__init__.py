"""Dagster resources, each a thin configurable wrapper: the lake (a LakeStore at the run's root), the Spark
session and the privacy settings."""
