"""Notifications: the in-app bell, e-mail through an SMTP outbox, per-user preferences."""
