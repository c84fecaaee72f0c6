"""What runs the flows: concurrency limits, the local stack, and the serve script."""
