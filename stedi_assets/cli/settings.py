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

from stedi_assets.lake.storage import LakeRootError
from stedi_assets.spark_settings import SparkSettingError

DEBUG_ENV = "STEDI_DEBUG"
SETTING_STATUS = 2  # as argparse's usage errors: the command was not given what it needs


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
