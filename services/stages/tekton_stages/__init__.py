"""Stage services, the run coordinator and the run event log."""
