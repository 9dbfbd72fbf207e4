"""What a run recorded: its history read back, its report, its replay. Read by the CLI
and the tests; imports nothing of the CLI."""
