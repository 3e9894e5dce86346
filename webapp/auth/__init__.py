"""Accounts: login with throttling and lock-out, sessions with an idle timeout, API tokens."""
