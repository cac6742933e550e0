"""Thin assets, one module per zone: each reads its inputs, calls a transform, and accounts for every row."""
