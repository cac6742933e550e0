"""`stedi`: every command a user runs outside Dagster, one subcommand each.

Each subcommand lives in its own module with a `main(argv) -> int`; this module only dispatches, importing
the chosen module alone (the SQL command must not pay for importing Dagster).
"""

from __future__ import annotations

import importlib
import sys

# name -> (module, one-line description); `up`, `down` and `status` are actions of the services module.
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("stedi_assets.cli.run", "materialize every asset and its checks, printing each asset as it finishes"),
    "sample": ("stedi_assets.sample.cli", "generate a sample lake (the three landing feeds, with real-feed defects)"),
    "sql": ("stedi_assets.cli.sql", "run one read-only SQL query over the zone tables, by name"),
    "catalog": ("stedi_assets.cli.catalog", "print Athena DDL for every table, or register them in AWS Glue"),
    "review": ("stedi_assets.cli.review", "list (or blank) quarantined raw lines an erasure cannot decide"),
    "export": ("stedi_assets.cli.export", "write the training table and its dataset card to a folder or S3"),
    "up": ("stedi_assets.cli.services", "start a warm Spark Connect server, the Dagster daemon and the webserver"),
    "down": ("stedi_assets.cli.services", "stop what `stedi up` started"),
    "status": ("stedi_assets.cli.services", "list what `stedi up` started and is still running"),
}
SERVICE_ACTIONS = ("up", "down", "status")

USAGE = """usage: stedi <command> [options]       (stedi <command> --help for its options and environment)

The STEDI lakehouse: landing, trusted and curated zone tables as a Dagster asset graph over PySpark.

commands:
{commands}

Dagster itself: .venv/bin/dagster dev (UI), .venv/bin/dagster asset materialize -m stedi_assets --select '*'
"""


def usage() -> str:
    width = max(map(len, COMMANDS))
    return USAGE.format(commands="\n".join(f"  {name:<{width}}  {about}" for name, (_, about) in COMMANDS.items()))


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    command, rest = args[0], args[1:]
    if command not in COMMANDS:
        print(f"stedi: unknown command {command!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[command][0])
    if command in SERVICE_ACTIONS:
        rest = [command, *rest]
    return module.main(rest, prog=f"stedi {command}")


if __name__ == "__main__":
    sys.exit(main())
