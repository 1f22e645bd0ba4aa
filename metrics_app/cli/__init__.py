"""``flask`` subcommands, one module per group; each group is registered in ``create_app``."""
