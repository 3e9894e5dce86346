"""The supervisor's board: late steps, load per agency and professional, re-assessments due."""
