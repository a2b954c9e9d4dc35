"""Rhetor, the orchestrator CI: debates, roster and team chat run here."""
