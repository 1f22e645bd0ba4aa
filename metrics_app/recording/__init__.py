"""This machine's GPU readings as seed-format crawler records: the local recorder and the push agent."""
