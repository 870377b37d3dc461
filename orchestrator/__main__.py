"""`python -m orchestrator` is the `snail` command."""

from orchestrator.cli.main import main

main()
