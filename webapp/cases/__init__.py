"""Cases: registering a detection, the case page, reporting a new incident."""
