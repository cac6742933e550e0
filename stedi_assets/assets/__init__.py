"""Thin assets, one module per zone: each reads its inputs, calls a transform, and accounts for every row."""

from stedi_assets.assets.curated import customer_curated, machine_learning_curated
from stedi_assets.assets.erasure import customer_erasure, erasure_receipts
from stedi_assets.assets.landing import landing_assets
from stedi_assets.assets.trusted import accelerometer_trusted, customer_trusted, step_trainer_trusted

ZONE_ASSETS = [
    customer_erasure,
    *landing_assets,
    customer_trusted,
    accelerometer_trusted,
    customer_curated,
    step_trainer_trusted,
    machine_learning_curated,
    erasure_receipts,
]
