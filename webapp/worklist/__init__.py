"""The worklist: what my agency and I must do, most urgent first."""
