"""The documentation's own code: the generator of the CLI reference (cli_reference.py).
Not installed with the package; run from the project folder."""
