"""Server reflection on both protocol versions, `grpc.reflection.v1` (what current grpcurl and Postman
ask first) and `grpc.reflection.v1alpha`, that also finds a method by its full name
(`shifu.v1.RecommendService.Recommend`), as grpcurl's `describe` asks: protobuf's descriptor pool
knows services and messages, not methods, so grpcio-reflection alone answers "Symbol not found"."""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_reflection.v1alpha import reflection, reflection_pb2, reflection_pb2_grpc

V1ALPHA = reflection.SERVICE_NAME
V1 = "grpc.reflection.v1.ServerReflection"


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


def _add_v1_descriptor() -> None:
    """grpcio-reflection ships only v1alpha (grpc/grpc#38576). v1 is the same file under another
    package, field for field, so the same messages serve it on the wire; its descriptor, derived from
    v1alpha's, goes in the pool so that a client can `describe` the v1 service as well."""
    pool = descriptor_pool.Default()
    v1 = descriptor_pb2.FileDescriptorProto.FromString(reflection_pb2.DESCRIPTOR.serialized_pb)
    old, new = f".{v1.package}.", ".grpc.reflection.v1."
    v1.name, v1.package = "grpc/reflection/v1/reflection.proto", "grpc.reflection.v1"
    v1.ClearField("options")
    for message in v1.message_type:
        for field in message.field:
            if field.HasField("type_name"):
                field.type_name = field.type_name.replace(old, new)
    for method in v1.service[0].method:
        method.input_type, method.output_type = (
            method.input_type.replace(old, new),
            method.output_type.replace(old, new),
        )
    try:
        pool.FindFileByName(v1.name)
    except KeyError:
        pool.AddSerializedFile(v1.SerializeToString())


def enable(service_names: tuple[str, ...], server: grpc.Server) -> None:
    """Reflection for `service_names` and for itself, on both versions."""
    _add_v1_descriptor()
    servicer = MethodAwareReflection((*service_names, V1, V1ALPHA))
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(servicer, server)
    info = grpc.stream_stream_rpc_method_handler(
        servicer.ServerReflectionInfo,
        request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
        response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
    )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(V1, {"ServerReflectionInfo": info}),)
    )
