"""This machine's GPU readings as crawler records in the crawler-ingest API's format: the local recorder and the push agent."""
