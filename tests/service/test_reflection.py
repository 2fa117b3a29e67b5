"""Server reflection as tools ask for it: current grpcurl and Postman try `grpc.reflection.v1` first,
older ones `grpc.reflection.v1alpha`; both answer, over a real channel to the real server."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import descriptor_pb2
from grpc_reflection.v1alpha import reflection_pb2 as wire

# v1 and v1alpha are the same messages field for field, so v1alpha's classes encode a v1 call.
VERSIONS = ("grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection")


def ask(channel: grpc.Channel, service: str, **request: str) -> wire.ServerReflectionResponse:
    info = channel.stream_stream(
        f"/{service}/ServerReflectionInfo",
        request_serializer=wire.ServerReflectionRequest.SerializeToString,
        response_deserializer=wire.ServerReflectionResponse.FromString,
    )
    (answer,) = info(iter([wire.ServerReflectionRequest(**request)]), timeout=10)
    return answer


def files(answer: wire.ServerReflectionResponse) -> list[descriptor_pb2.FileDescriptorProto]:
    return [
        descriptor_pb2.FileDescriptorProto.FromString(raw)
        for raw in answer.file_descriptor_response.file_descriptor_proto
    ]


@pytest.mark.parametrize("service", VERSIONS)
def test_both_reflection_versions_list_the_services(channel: grpc.Channel, service: str) -> None:
    answer = ask(channel, service, list_services="")
    names = {s.name for s in answer.list_services_response.service}
    assert {
        "shifu.v1.RecommendService",
        "shifu.v1.CatalogService",
        "shifu.v1.EventService",
        "shifu.v1.DispatchService",
        "grpc.health.v1.Health",
        *VERSIONS,
    } <= names


@pytest.mark.parametrize("service", VERSIONS)
def test_both_versions_describe_a_method_by_its_full_name(channel: grpc.Channel, service: str) -> None:
    answer = ask(channel, service, file_containing_symbol="shifu.v1.RecommendService.Recommend")
    assert not answer.HasField("error_response"), answer.error_response.error_message
    assert "shifu/v1/recommend.proto" in [f.name for f in files(answer)]


@pytest.mark.parametrize("symbol", VERSIONS)
def test_each_reflection_service_describes_itself(channel: grpc.Channel, symbol: str) -> None:
    answer = ask(channel, VERSIONS[0], file_containing_symbol=symbol)
    assert not answer.HasField("error_response"), answer.error_response.error_message
    package, _, name = symbol.rpartition(".")
    (described,) = (f for f in files(answer) if f.package == package)
    (method,) = next(s for s in described.service if s.name == name).method
    assert (method.name, method.input_type) == ("ServerReflectionInfo", f".{package}.ServerReflectionRequest")
    assert method.client_streaming and method.server_streaming
