"""The faces of Nightshift: the CLI (and, later, the web service), thin over flows and the core."""
