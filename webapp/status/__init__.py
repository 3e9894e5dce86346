"""Status page: what is deployed and how much work there is, in counts only."""
