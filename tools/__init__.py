"""Developer tools for Coordina (diagram layout and rendering)."""
