"""The one error type for invalid input, shared by every model so the service can name the field."""


class FieldError(ValueError):
    """Invalid input; `field` is the offending field's path in the request, e.g. `jobs[3].time_window`."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class SizeError(FieldError):
    """Valid input that is larger than one call may be: the service answers RESOURCE_EXHAUSTED."""
