"""Resources: the Spark session, the lake (table storage) and the IO manager that adapts it for Dagster."""
