"""Server reflection that also finds a method by its full name (`shifu.v1.RecommendService.Recommend`),
as grpcurl's `describe` asks: protobuf's descriptor pool knows services and messages, not methods, so
grpcio-reflection alone answers "Symbol not found"."""

from __future__ import annotations

from typing import Any

import grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2_grpc


class MethodAwareReflection(reflection.ReflectionServicer):
    def _file_containing_symbol(self, request: Any, fully_qualified_name: str) -> Any:
        service, _, method = fully_qualified_name.rpartition(".")
        pool = self._pool
        try:
            pool.FindFileContainingSymbol(fully_qualified_name)
        except KeyError:
            try:
                if service and method in pool.FindServiceByName(service).methods_by_name:
                    fully_qualified_name = service
            except KeyError:
                pass  # neither a symbol nor a method: the base class answers NOT_FOUND
        return super()._file_containing_symbol(request, fully_qualified_name)


def enable(service_names: tuple[str, ...], server: grpc.Server) -> None:
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(MethodAwareReflection(service_names), server)
