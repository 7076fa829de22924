"""gRPC `gantry.v1.FaceVerification`, served from the gateway process on :50051.

It shares the gateway's pipelines, so REST and gRPC give the same answers. Server reflection
and the standard ``grpc.health.v1`` service are on.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from gantry.core.errors import ErrorKind, GantryError
from gantry.serving.faces.service import FacePipeline, FaceResult, VerifyResult
from gateway.grpc.protos import ensure_generated

ensure_generated()

from gantry.v1 import faces_pb2, faces_pb2_grpc  # noqa: E402  (generated just above)

SERVICE_NAME = faces_pb2.DESCRIPTOR.services_by_name["FaceVerification"].full_name
# Max message: two 20 MiB uploads plus framing.
MAX_MESSAGE_BYTES = 48 * 1024 * 1024

GRPC_STATUS: dict[ErrorKind, grpc.StatusCode] = {
    ErrorKind.INVALID_INPUT: grpc.StatusCode.INVALID_ARGUMENT,
    ErrorKind.UNSUPPORTED_MEDIA: grpc.StatusCode.INVALID_ARGUMENT,
    ErrorKind.TOO_LARGE: grpc.StatusCode.RESOURCE_EXHAUSTED,
    ErrorKind.NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    ErrorKind.CONFLICT: grpc.StatusCode.FAILED_PRECONDITION,
    ErrorKind.GONE: grpc.StatusCode.NOT_FOUND,
    ErrorKind.UNAVAILABLE: grpc.StatusCode.UNAVAILABLE,
    ErrorKind.UPSTREAM_FAILED: grpc.StatusCode.INTERNAL,
    ErrorKind.INTERNAL: grpc.StatusCode.INTERNAL,
}


def grpc_status(error: GantryError) -> grpc.StatusCode:
    """The gRPC status of an error kind."""
    return GRPC_STATUS[error.kind]


def _version(request: Any) -> int | None:
    """The request's ``optional int32 version``, None when the client left it out."""
    return int(request.version) if request.HasField("version") else None


def _float(request: Any, field: str) -> float | None:
    """An ``optional float`` field's value, None when the client left it out."""
    return float(getattr(request, field)) if request.HasField(field) else None


def face_message(face: FaceResult) -> faces_pb2.Face:
    """A service face as a protobuf message."""
    return faces_pb2.Face(
        box=list(face.box),
        score=face.score,
        landmarks=[faces_pb2.Point(x=x, y=y) for x, y in face.landmarks],
        embedding=list(face.embedding or ()),
        model=face.model or "",
    )


def verify_message(result: VerifyResult, request_id: str) -> faces_pb2.VerifyResponse:
    """A verification result as a protobuf message."""
    return faces_pb2.VerifyResponse(
        match=result.match,
        similarity=result.similarity,
        threshold=result.threshold,
        model=result.model,
        face_a=face_message(result.face_a),
        face_b=face_message(result.face_b),
        id=request_id,
        model_version=result.version,
    )


class FaceVerificationServicer(faces_pb2_grpc.FaceVerificationServicer):
    """Translates gRPC calls to :class:`FacePipeline` calls."""

    def __init__(self, faces: FacePipeline) -> None:
        self.faces = faces

    async def _abort(self, context: grpc.aio.ServicerContext, error: GantryError) -> None:
        await context.abort(
            grpc_status(error),
            error.message,
            trailing_metadata=(("gantry-error-code", error.code),),
        )

    async def Detect(  # noqa: N802  (gRPC method names)
        self, request: faces_pb2.DetectRequest, context: grpc.aio.ServicerContext
    ) -> faces_pb2.DetectResponse:
        try:
            result = await self.faces.detect(
                data=request.image,
                detector=request.detector or None,
                min_score=_float(request, "min_score"),
                version=_version(request),
            )
        except GantryError as error:
            await self._abort(context, error)
            raise
        return faces_pb2.DetectResponse(
            width=result.width,
            height=result.height,
            faces=[face_message(f) for f in result.faces],
            models=[faces_pb2.ModelVersion(name=n, version=v) for n, v in result.models],
        )

    async def Embed(  # noqa: N802
        self, request: faces_pb2.EmbedRequest, context: grpc.aio.ServicerContext
    ) -> faces_pb2.EmbedResponse:
        try:
            result = await self.faces.embed(
                data=request.image,
                model=request.model or None,
                version=_version(request),
                detector=request.detector or None,
            )
        except GantryError as error:
            await self._abort(context, error)
            raise
        return faces_pb2.EmbedResponse(
            width=result.width,
            height=result.height,
            faces=[face_message(f) for f in result.faces],
            model=result.model,
            model_version=result.version,
        )

    async def _verify(self, request: faces_pb2.VerifyRequest) -> VerifyResult:
        return await self.faces.verify(
            data_a=request.image_a,
            data_b=request.image_b,
            model=request.model or None,
            version=_version(request),
            threshold=_float(request, "threshold"),
        )

    async def Verify(  # noqa: N802
        self, request: faces_pb2.VerifyRequest, context: grpc.aio.ServicerContext
    ) -> faces_pb2.VerifyResponse:
        try:
            return verify_message(await self._verify(request), request.id)
        except GantryError as error:
            await self._abort(context, error)
            raise

    async def VerifyStream(  # noqa: N802
        self,
        request_iterator: AsyncIterator[faces_pb2.VerifyRequest],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[faces_pb2.VerifyResponse]:
        # One bad pair must not end the stream: its answer carries the error instead.
        async for request in request_iterator:
            try:
                yield verify_message(await self._verify(request), request.id)
            except GantryError as error:
                yield faces_pb2.VerifyResponse(
                    id=request.id, error=faces_pb2.Error(code=error.code, message=error.message)
                )


async def start_grpc_server(faces: FacePipeline, *, host: str, port: int) -> grpc.aio.Server:
    """Start the gRPC server (FaceVerification, health, reflection) and return it."""
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ]
    )
    faces_pb2_grpc.add_FaceVerificationServicer_to_server(FaceVerificationServicer(faces), server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (
            SERVICE_NAME,
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        ),
        server,
    )
    if server.add_insecure_port(f"{host}:{port}") == 0:
        raise RuntimeError(f"cannot listen for gRPC on {host}:{port}")
    await server.start()
    for name in ("", SERVICE_NAME):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    return server
