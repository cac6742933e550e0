"""One way for every command to report a bad setting: one line on stderr, `stedi <command>: <what is wrong>`,
and exit status 2, before anything starts; with `--debug` (or STEDI_DEBUG=1) the error is raised instead, with its
stack trace.

The line names the setting (its environment variable, and its run-config field where it has one, as the launchpad
shows it), says what kind of value is wrong with it, never a secret's value, and how to fix it:

    stedi sql: STEDI_LAKE_ROOT / lake.root='/data/lak' names no folder: set it to ...

Each resource checks its own fields (resources/, spark_settings.py), so that a launchpad run and the commands
judge a setting alike; `run_settings` sets the resources up as a run does. Nothing here imports Dagster until
`run_settings` is called: `stedi sql` does not pay for it.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from stedi_assets.lake.storage import LakeRootError, is_s3
from stedi_assets.lake.store import LakeStore
from stedi_assets.spark_settings import SparkSettingError
from stedi_assets.tables import LANDING_TABLES

DEBUG_ENV = "STEDI_DEBUG"
SETTING_STATUS = 2  # as argparse's usage errors: the command was not given what it needs
LAKE_ROOT = "STEDI_LAKE_ROOT / lake.root"
LAKE_FIX = (
    "set it to your lake's folder or s3://bucket/prefix, or unset it for the built-in sample lake (`stedi sample`"
    " generates it)"
)


class SettingError(ValueError):
    """A setting a command cannot use; the message is the whole line after `stedi <command>: `."""


# What a bad setting raises, wherever it is checked: the commands, the lake root, the Spark settings.
SETTING_ERRORS = (SettingError, LakeRootError, SparkSettingError)


def add_debug_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--debug", action="store_true", help=f"a bad setting raises with its stack trace (also {DEBUG_ENV}=1)"
    )


def debugging(debug: bool = False) -> bool:
    return debug or os.environ.get(DEBUG_ENV) == "1"


def report(prog: str, error: Exception, debug: bool = False) -> int:
    """Prints a bad setting as its one line and returns exit status 2; with --debug or STEDI_DEBUG=1 raises the
    error again, so that Python prints its stack trace (and the exit status is 1)."""
    if debugging(debug):
        raise error
    print(f"{prog}: {one_line(str(error))}", file=sys.stderr)
    return SETTING_STATUS


def one_line(text: str) -> str:
    """The text with what a terminal would act on (line breaks, ESC, bidi controls) spelled as escapes: a value
    quoted from the environment or an S3 error cannot break the line or rewrite the screen."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


# --- the checks the commands share -----------------------------------------------------------------------------


def check_lake_root(store: LakeStore) -> LakeStore:
    """The lake of a root setting (STEDI_LAKE_ROOT, or the resource's `lake.root`), checked before anything reads
    it: a LakeRootError saying, in one line, what is wrong with the root and how to fix it."""
    root = store.root_setting
    shown = f"{LAKE_ROOT}={root!r}"
    if store.is_sample and not Path(store.uri).is_dir():
        raise LakeRootError(
            f"{LAKE_ROOT} is unset, so the lake is the built-in sample lake {store.uri}, which is not generated yet:"
            " run `stedi sample`, or set STEDI_LAKE_ROOT to your lake's folder or s3://bucket/prefix"
        )
    if is_s3(store.uri):
        try:
            store.storage.check_root()
        except LakeRootError as error:
            cause = error.__context__ or error  # the S3 client's error (suppressed in the trace, not lost)
            raise LakeRootError(
                f"{shown} cannot be read ({cause}): check the bucket and prefix, and the AWS credentials and region"
                " (AWS_PROFILE or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_REGION)"
            ) from None
    else:
        path = Path(store.uri)
        if not path.exists():
            raise LakeRootError(f"{shown} names no folder: {LAKE_FIX}")
        if not path.is_dir():
            raise LakeRootError(f"{shown} names a file, not a folder: {LAKE_FIX}")
    missing = [table.files_path for table in LANDING_TABLES if not store.storage.exists(store.files_location(table))]
    named = shown if root.strip() else LAKE_ROOT
    landing = ", ".join(table.files_path for table in LANDING_TABLES)
    if len(missing) == len(LANDING_TABLES):
        raise LakeRootError(
            f"{named} names a folder that is not a lake (it has none of the landing folders {landing}): set it to"
            " the folder that holds them, or unset it for the built-in sample lake"
        )
    if missing:
        raise LakeRootError(
            f"{named} names a lake without the landing folder{'s' * (len(missing) > 1)} {', '.join(missing)}: create"
            f" {'them' if len(missing) > 1 else 'it'}, or set it to the folder that holds {landing}"
        )
    return store


def run_settings() -> None:
    """Sets up a run's resources as a run does (from the environment, by the resources' own checks), before any
    run starts; raises the first bad setting as a SettingError. Used by `stedi run` and `stedi up` (whose daemon
    and webserver start runs with the same settings)."""
    from dagster import DagsterResourceFunctionError, build_resources
    from dagster._core.log_manager import DagsterLogManager

    from stedi_assets.definitions import defs
    from stedi_assets.resources.privacy import PrivacySettingError

    try:
        resources = defs().resources or {}  # a setting read when the code location loads fails here
    except ValueError as error:
        raise SettingError(str(error)) from error
    try:
        with build_resources(resources, log_manager=DagsterLogManager.create(loggers=[])):  # silent: no run yet
            return
    except DagsterResourceFunctionError as error:
        if isinstance(error.__cause__, (*SETTING_ERRORS, PrivacySettingError)):
            raise SettingError(str(error.__cause__)) from error.__cause__
        raise
