"""The long-lived services of one machine, in two modules: `supervisor` starts, records, finds and stops process
groups (nothing of the lake in it); `stack` defines the lake's services (Spark Connect, the Dagster daemon and
webserver), their environments, and `up`, which starts them. The `stedi up | down | status` command is
stedi_assets.cli.services.
"""
