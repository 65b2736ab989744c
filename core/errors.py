"""The one exception family for business rules that fail."""

from __future__ import annotations


class ApplicationError(Exception):
    """Raise when a business rule refuses a request; carry a human message and a stable code."""

    code = "invalid"
    status = 400

    def __init__(self, message: str, *, code: str | None = None, field: str | None = None) -> None:
        super().__init__(message)
        # A lazy translation is made text now, in the language of the request that failed.
        self.message = str(message)
        self.field = field
        if code:
            self.code = code


class NotAllowed(ApplicationError):
    """Raise when the acting user may not do this."""

    code = "not_allowed"
    status = 403


class Conflict(ApplicationError):
    """Raise when the request conflicts with the current state."""

    code = "conflict"
    status = 409
