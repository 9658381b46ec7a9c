"""The `tastebud` command line: thin commands over the serving, training and benchmark packages."""
