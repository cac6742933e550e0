"""The lake without Dagster: what the assets, the sensor and the light commands (`stedi sql`, `stedi catalog`)
share. Importing `storage`, `delta`, `ledger`, `changes`, `codecs` or `blanking` loads neither Dagster nor Spark.

    storage   local folders and S3 behind one interface: the one place they differ
    codecs    how a landing file is compressed, decided from its name as Spark decides it
    delta     DeltaFolder: a Delta table's versions, atomic commits (delta-rs), conflicts, vacuum
    changes   change sets: the keys (customers, devices) a commit changed
    ledger    which landing files a landing table's version consumed
    blanking  erasure's rewrite of a raw landing file, lines blanked, every other byte kept
    store     LakeStore: where each zone table lives under a root, read and written with Spark
"""
