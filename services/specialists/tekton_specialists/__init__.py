"""The generic specialist process: one CI from the catalog per process."""
