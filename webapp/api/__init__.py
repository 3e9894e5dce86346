"""JSON API v1 for other systems and mobile clients."""
