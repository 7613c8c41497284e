"""Reports: statistics documents, tables and CSV built from the store's figures (used by the command line and the window)."""
