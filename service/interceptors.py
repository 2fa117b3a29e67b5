"""What every call goes through before and after its handler: a request id, tolerant decoding, access
control, its service's own thread pool, metrics, and one access-log line (an audit line for dispatch).

gRPC's sync server runs a handler on the thread pool named by the `experimental_thread_pool` attribute
of its behaviour function, when there is one: that is how each service gets its own executor here, so
that dispatch calls waiting for their solves never hold the threads the storefront's calls need.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass
from typing import Any

import grpc

from service import metrics
from service.auth import Authenticator, Decision
from service.logs import audit, hash_id, request_id

log = logging.getLogger("shifu.access")
REQUEST_ID_KEY = "x-request-id"
_GOOD_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:/+=-]{1,128}$")
DISPATCH_SERVICE = "shifu.v1.DispatchService"
_DENIALS = {
    "unauthenticated": grpc.StatusCode.UNAUTHENTICATED,
    "permission_denied": grpc.StatusCode.PERMISSION_DENIED,
}


@dataclass(frozen=True)
class Malformed:
    """A request whose bytes are not a valid message of its type: answered INVALID_ARGUMENT."""

    error: str


def _tolerant(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    """gRPC answers INTERNAL when a deserializer raises; the caller sent the bad bytes, so this turns
    them into a value the behaviour answers INVALID_ARGUMENT for."""
    if deserializer is None:
        return None

    def deserialize(data: bytes) -> Any:
        try:
            return deserializer(data)
        except Exception as error:
            return Malformed(f"{type(error).__name__}: {error}")

    return deserialize


def _request_id(metadata: tuple[tuple[str, Any], ...]) -> str:
    for key, value in metadata:
        if key == REQUEST_ID_KEY and isinstance(value, str) and _GOOD_REQUEST_ID.match(value):
            return value
    return uuid.uuid4().hex


def _dispatch_audit(request: Any, response: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "jobs": len(request.jobs) if hasattr(request, "jobs") else 1,
        "technicians": len(request.technicians) if hasattr(request, "technicians") else 0,
    }
    if response is not None and hasattr(response, "solve_ms"):
        fields["solve_ms"] = round(response.solve_ms, 1)
        fields["solve_status"] = response.status
        fields["unassigned"] = len(response.unassigned)
    return fields


class EdgeInterceptor(grpc.ServerInterceptor):
    def __init__(self, auth: Authenticator | None, pools: dict[str, futures.ThreadPoolExecutor]) -> None:
        self._auth = auth
        self._pools = pools

    def intercept_service(
        self, continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:  # fmt: skip
        handler = continuation(details)
        if handler is None or handler.unary_unary is None:
            return handler  # streaming calls (health watch, reflection) pass as they are
        service, _, method = details.method.lstrip("/").rpartition("/")
        metadata = tuple(details.invocation_metadata or ())
        decision = self._auth.decide(service, metadata) if self._auth else Decision("")
        behaviour = self._wrap(handler.unary_unary, service, method, metadata, decision)
        pool = self._pools.get(service)
        if pool is not None:
            behaviour.experimental_thread_pool = pool  # type: ignore[attr-defined]
        return grpc.unary_unary_rpc_method_handler(
            behaviour,
            request_deserializer=_tolerant(handler.request_deserializer),
            response_serializer=handler.response_serializer,
        )

    def _wrap(
        self,
        inner: Callable[[Any, grpc.ServicerContext], Any],
        service: str,
        method: str,
        metadata: tuple[tuple[str, Any], ...],
        decision: Decision,
    ) -> Callable[[Any, grpc.ServicerContext], Any]:
        def behaviour(request: Any, context: grpc.ServicerContext) -> Any:
            rid = _request_id(metadata)
            token = request_id.set(rid)
            context.send_initial_metadata(((REQUEST_ID_KEY, rid),))
            metrics.STARTED.labels("unary", service, method).inc()
            in_flight = metrics.IN_FLIGHT.labels(service, method)
            in_flight.inc()
            started = time.perf_counter()
            response, raised = None, False
            try:
                if decision.denied is not None:
                    kind, message = decision.denied
                    context.abort(_DENIALS[kind], message)
                if isinstance(request, Malformed):
                    context.abort(
                        grpc.StatusCode.INVALID_ARGUMENT, f"request: not a valid message ({request.error})"
                    )
                response = inner(request, context)
                return response
            except BaseException:
                raised = True
                raise
            finally:
                seconds = time.perf_counter() - started
                code = _code(context, raised)
                in_flight.dec()
                metrics.HANDLED.labels("unary", service, method, code).inc()
                metrics.HANDLING_SECONDS.labels("unary", service, method).observe(seconds)
                fields = {"method": f"{service}/{method}", "code": code, "ms": round(seconds * 1000, 2)}
                fields["client"] = decision.client
                user = getattr(request, "user_id", "")
                if isinstance(user, str) and user:
                    fields["user"] = hash_id(user)
                if service == DISPATCH_SERVICE and not isinstance(request, Malformed):
                    audit("dispatch_call", **fields, **_dispatch_audit(request, response))
                else:
                    log.info("call", extra={"event": {"type": "call", **fields}})
                request_id.reset(token)

        return behaviour


def _code(context: grpc.ServicerContext, raised: bool) -> str:
    """The status the call ends with: the one the handler set, else OK (UNKNOWN if it raised)."""
    code = context.code()  # type: ignore[attr-defined]
    if code is None:
        return "UNKNOWN" if raised else "OK"
    return code.name if isinstance(code, grpc.StatusCode) else str(code)
