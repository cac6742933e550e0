from setuptools import find_packages, setup

setup(
    name="stedi_assets",
    version="0.1.0",
    description="STEDI lakehouse: landing, trusted and curated zone tables as a Dagster asset graph over PySpark",
    packages=find_packages(exclude=["stedi_assets_tests", "stedi_assets_tests.*", "benchmarks"]),
    package_data={"stedi_assets.sql_guard": ["*.java"]},
    python_requires=">=3.11,<3.13",
    install_requires=[
        # dagster 1.13.N goes with its libraries 0.29.N; pyspark 4.3 warns about pandas 3.
        "dagster==1.13.27",
        "dagster-webserver==1.13.27",
        "dagster-aws==0.29.27",
        "dagster-postgres==0.29.27",  # the production instance's storage (dagster.production.yaml)
        "dagster-pyspark==0.29.27",
        "pyspark[connect]==4.3.0",
        "pandera[pyspark]==0.35.0",
        "pandas>=2.2,<3",
        "pyarrow>=15",
        # Delta tables: atomic versions of the Parquet files Spark writes (Spark cannot load delta-spark here).
        "deltalake==1.6.6",
    ],
    entry_points={"console_scripts": ["stedi = stedi_assets.cli:main"]},
    extras_require={
        "dev": [
            "pytest==9.2.0",
            "pytest-xdist==3.8.0",  # `make check` runs its tests on both cores (a Spark session per worker)
            "ruff==0.17.6",
            "duckdb==2.0.1",
            "moto[server]==5.2.5",
            "playwright==1.65.2",
            "hypothesis==6.170.15",
            # The type checker and the stubs of the libraries that ship no types (see [tool.mypy]).
            "mypy==2.4.1",
            "boto3-stubs[s3,glue]==1.43.126",
            "pyarrow-stubs==20.0.0.20260819",
        ],
    },
)
