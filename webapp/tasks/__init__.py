"""Task pages: the form of a step, drafts, completion."""
