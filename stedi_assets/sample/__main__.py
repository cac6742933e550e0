"""`python -m stedi_assets.sample`: the same as `stedi sample`."""

from stedi_assets.sample.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
