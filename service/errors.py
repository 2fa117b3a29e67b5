"""Turning model-side errors into gRPC statuses, with the offending field machine-readable."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, TypeVar

import grpc
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from models.errors import FieldError, SizeError

log = logging.getLogger(__name__)
Handler = TypeVar("Handler", bound=Callable[..., Any])


class RpcFailure(Exception):
    """A handler's way to end a call with a status other than INVALID_ARGUMENT."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def abort_invalid(context: grpc.ServicerContext, error: FieldError) -> None:
    """INVALID_ARGUMENT (RESOURCE_EXHAUSTED for a request over a size limit) whose message names the
    field, with a google.rpc.BadRequest detail as well."""
    violation = error_details_pb2.BadRequest.FieldViolation(field=error.field, description=error.message)
    code = code_pb2.RESOURCE_EXHAUSTED if isinstance(error, SizeError) else code_pb2.INVALID_ARGUMENT
    status = status_pb2.Status(code=code, message=str(error))
    status.details.add().Pack(error_details_pb2.BadRequest(field_violations=[violation]))
    context.abort_with_status(rpc_status.to_status(status))


def rpc(handler: Handler) -> Handler:
    """Wraps a servicer method: FieldError becomes INVALID_ARGUMENT (SizeError RESOURCE_EXHAUSTED),
    RpcFailure its own status, anything
    unexpected INTERNAL with a log line (never a stack trace sent to the client). Handlers raise; they do
    not call context.abort themselves, whose exception would look unexpected here."""

    @functools.wraps(handler)
    def wrapper(self: Any, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            return handler(self, request, context)
        except FieldError as error:
            abort_invalid(context, error)
        except RpcFailure as failure:
            context.abort(failure.code, failure.message)
        except Exception:
            log.exception("%s failed", handler.__name__)
            context.abort(
                grpc.StatusCode.INTERNAL, f"internal error in {handler.__name__}; see the server log"
            )
        return None

    return wrapper  # type: ignore[return-value]
