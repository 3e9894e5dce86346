"""The protocol designer: definitions and versions, modeller and form editor, validate, try, deploy."""
