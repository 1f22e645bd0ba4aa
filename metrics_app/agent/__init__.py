"""``flask agent push``: this machine's GPUs sent to a remote service, spooled while it is away."""
