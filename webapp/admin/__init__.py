"""Administration: agencies and users."""
