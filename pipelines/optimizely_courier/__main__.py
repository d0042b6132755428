"""`python -m optimizely_courier ...`: the `courier` command."""

from optimizely_courier.cli.main import main

main()
