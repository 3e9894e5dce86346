"""Coordina's workflow engine: SpiffWorkflow execution, persistence and deadlines (no Flask here)."""
