from __future__ import annotations


class ServiceError(Exception):
    """A refusal the user can act on. ``status`` is the HTTP status views map it to."""

    status = 400

    def __init__(self, message: str, field_errors: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        self.field_errors = field_errors or {}


class ValidationError(ServiceError):
    status = 422


class NotFound(ServiceError):
    """Also raised for anything outside the actor's scope: it must not leak existence."""

    status = 404

    def __init__(self, what: str = "Not found"):
        super().__init__(what)


class Forbidden(ServiceError):
    status = 403


class Conflict(ServiceError):
    status = 409
