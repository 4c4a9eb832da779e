"""`python -m pikube.cli` runs the CLI."""

from pikube.cli.main import main

main()
