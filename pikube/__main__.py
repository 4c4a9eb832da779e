"""`python -m pikube` runs the CLI."""

from pikube.cli.main import main

main()
