"""python -m stedi_assets.sql_guard: builds the guard's jar if needed and prints its path."""

from stedi_assets.sql_guard import main

main()
