"""Helpers shared by tests of several folders: imported by test modules and conftests, never the reverse."""
