"""One module per deployable flow. Flows only orchestrate: the work is in tasks and the core."""
