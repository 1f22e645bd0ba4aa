"""Hardware sampling: one thread per source, one shared ring buffer, one serialized frame per tick."""
