"""The classified-frame convention shared by the transforms: the first rule that holds names the reason."""

from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from stedi_assets.reasons import REASON


def first_reason(rules: Sequence[tuple[Column, str, Column | str | None]]) -> tuple[Column, Column]:
    """(reason, detail) columns naming the first rule whose condition holds; null when none does."""
    reason: Column | None = None
    detail: Column | None = None
    for condition, name, rule_detail in rules:
        detail_col = F.lit(rule_detail) if rule_detail is None or isinstance(rule_detail, str) else rule_detail
        reason = F.when(condition, F.lit(name)) if reason is None else reason.when(condition, F.lit(name))
        detail = F.when(condition, detail_col) if detail is None else detail.when(condition, detail_col)
    if reason is None or detail is None:  # no rules (the two are set together)
        return F.lit(None).cast("string"), F.lit(None).cast("string")
    return reason, detail.cast("string")


def duplicate_rank(data_columns: Sequence[str], order_columns: Sequence[str]) -> Column:
    """1 for the first copy of each exact-duplicate group (by `order_columns`), 2.. for the later copies."""
    window = Window.partitionBy(*data_columns).orderBy(*order_columns)
    return F.row_number().over(window)


def kept(classified: DataFrame) -> DataFrame:
    return classified.where(F.col(REASON).isNull())
