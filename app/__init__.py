"""The faces of Nightshift: the CLI and the web service, thin over flows and the core."""
