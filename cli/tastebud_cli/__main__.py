"""`python -m tastebud_cli`: the same as the `tastebud` command."""

from tastebud_cli.app import main

main()
