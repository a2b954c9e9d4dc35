"""Numa, the platform overseer: reports the state of the whole fleet."""
