"""Case transfers between territories: a Mesa asks another territory's Mesa to take a case; its coordinator decides."""
