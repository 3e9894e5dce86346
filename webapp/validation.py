"""The one error an operation raises when what a person wrote cannot be stored, with messages per field."""

from __future__ import annotations

from collections.abc import Mapping, Sequence


class InvalidInput(Exception):  # noqa: N818 - named for what the user did, like the engine's errors
    """What a person wrote cannot be stored; `errors` maps each form field to its messages (translated)."""

    def __init__(self, errors: Mapping[str, Sequence[str]]) -> None:
        self.errors = {field: list(messages) for field, messages in errors.items()}
        super().__init__("; ".join(f"{field}: {' '.join(messages)}" for field, messages in self.errors.items()))
