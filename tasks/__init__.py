"""Prefect tasks: thin wrappers over the domain core, with retries, tags and concurrency declared here."""
