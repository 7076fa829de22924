"""gRPC `gantry.v1.FaceVerification`, served from the gateway process on :50051.

It shares the gateway's services, so REST and gRPC give the same answers. Server reflection
and the standard ``grpc.health.v1`` service are on.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from gantry.protos import ensure_generated
from gateway.errors import GantryError
from gateway.services.faces import FaceResult, FaceService, VerifyResult

ensure_generated()

from gantry.v1 import faces_pb2, faces_pb2_grpc  # noqa: E402  (generated just above)

SERVICE_NAME = faces_pb2.DESCRIPTOR.services_by_name["FaceVerification"].full_name
# Max message: two 20 MiB uploads plus framing.
MAX_MESSAGE_BYTES = 48 * 1024 * 1024

_STATUS = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    404: grpc.StatusCode.NOT_FOUND,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
    415: grpc.StatusCode.INVALID_ARGUMENT,
    422: grpc.StatusCode.INVALID_ARGUMENT,
    502: grpc.StatusCode.INTERNAL,
    503: grpc.StatusCode.UNAVAILABLE,
}


def grpc_status(error: GantryError) -> grpc.StatusCode:
    """The gRPC status of a REST error status."""
    return _STATUS.get(error.status, grpc.StatusCode.UNKNOWN)


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
    )


class FaceVerificationServicer(faces_pb2_grpc.FaceVerificationServicer):
    """Translates gRPC calls to :class:`FaceService` calls."""

    def __init__(self, faces: FaceService) -> None:
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
                min_score=request.min_score if request.HasField("min_score") else None,
            )
        except GantryError as error:
            await self._abort(context, error)
            raise
        return faces_pb2.DetectResponse(
            width=result.width, height=result.height, faces=[face_message(f) for f in result.faces]
        )

    async def Embed(  # noqa: N802
        self, request: faces_pb2.EmbedRequest, context: grpc.aio.ServicerContext
    ) -> faces_pb2.EmbedResponse:
        try:
            result = await self.faces.embed(
                data=request.image, model=request.model or None, detector=request.detector or None
            )
        except GantryError as error:
            await self._abort(context, error)
            raise
        return faces_pb2.EmbedResponse(
            width=result.width,
            height=result.height,
            faces=[face_message(f) for f in result.faces],
            model=result.model,
        )

    async def _verify(self, request: faces_pb2.VerifyRequest) -> VerifyResult:
        return await self.faces.verify(
            data_a=request.image_a,
            data_b=request.image_b,
            model=request.model or None,
            threshold=request.threshold if request.HasField("threshold") else None,
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


async def start_grpc_server(faces: FaceService, *, host: str, port: int) -> grpc.aio.Server:
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
