"""What runs the flows: the local serve script (and, later, work pool and limit set-up)."""
