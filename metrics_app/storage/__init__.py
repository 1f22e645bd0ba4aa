"""Persistent history of crawler records: compact typed rows, per-GPU summaries and per-minute rollups."""
