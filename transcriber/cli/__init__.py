"""The command line: the same engine and store as the window, for terminals and scripts (no Qt)."""
