"""gRPC `gantry.v1.FaceVerification`, served from the gateway process on :50051.

It shares the gateway's pipelines, API keys and admission gates, so REST and gRPC give the
same answers under the same rules. Server reflection and the standard ``grpc.health.v1``
service are on, and stay open with ``GANTRY_AUTH_MODE=keys``.

Robustness: a message that does not parse as its request type is INVALID_ARGUMENT (in
``VerifyStream``, an error answer for that message, the stream goes on); an image over
``GANTRY_MAX_UPLOAD_BYTES`` is RESOURCE_EXHAUSTED for its call or its stream message;
messages over ``GANTRY_GRPC_MAX_MESSAGE_BYTES`` cannot be received at all and end their call
with RESOURCE_EXHAUSTED, as gRPC does.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from google.protobuf.message import DecodeError
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from gantry.core.errors import ErrorKind, GantryError, InvalidInput
from gantry.core.imaging import grey_png
from gantry.serving.faces.service import FacePipeline, FaceResult, VerifyResult
from gateway.deps import AppState
from gateway.grpc.protos import ensure_generated

ensure_generated()

from gantry.v1 import faces_pb2  # noqa: E402  (generated just above)

SERVICE = faces_pb2.DESCRIPTOR.services_by_name["FaceVerification"]
SERVICE_NAME = SERVICE.full_name
SCOPE = "faces"

GRPC_STATUS: dict[ErrorKind, grpc.StatusCode] = {
    ErrorKind.INVALID_INPUT: grpc.StatusCode.INVALID_ARGUMENT,
    ErrorKind.UNSUPPORTED_MEDIA: grpc.StatusCode.INVALID_ARGUMENT,
    ErrorKind.TOO_LARGE: grpc.StatusCode.RESOURCE_EXHAUSTED,
    ErrorKind.UNAUTHENTICATED: grpc.StatusCode.UNAUTHENTICATED,
    ErrorKind.FORBIDDEN: grpc.StatusCode.PERMISSION_DENIED,
    ErrorKind.RATE_LIMITED: grpc.StatusCode.RESOURCE_EXHAUSTED,
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


class Undecodable:
    """What a request message that does not parse becomes (instead of an UNKNOWN error)."""

    def __init__(self, type_name: str, reason: str) -> None:
        self.error = InvalidInput(
            "invalid_message", f"the message is not a valid {type_name}: {reason}"
        )


def _parser(message_type: Any) -> Callable[[bytes], Any]:
    def parse(data: bytes) -> Any:
        try:
            return message_type.FromString(data)
        except (DecodeError, RuntimeError, ValueError) as exc:
            return Undecodable(message_type.DESCRIPTOR.full_name, str(exc) or "malformed")

    return parse


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


class FaceVerificationServicer:
    """Translates gRPC calls to :class:`FacePipeline` calls, under keys and admission."""

    def __init__(self, state: AppState) -> None:
        self.state = state
        self.faces: FacePipeline = state.pipelines.faces

    async def _authorize(self, context: grpc.aio.ServicerContext) -> None:
        authenticator = self.state.authenticator
        if authenticator is None:
            return
        metadata = {k.lower(): v for k, v in (context.invocation_metadata() or ())}
        key = metadata.get("x-api-key")
        await asyncio.to_thread(authenticator.check, str(key) if key else None, SCOPE)

    async def _abort(self, context: grpc.aio.ServicerContext, error: GantryError) -> None:
        trailing = [("gantry-error-code", error.code)]
        if error.retry_after_s is not None:
            trailing.append(("retry-after", str(max(1, math.ceil(error.retry_after_s)))))
        await context.abort(grpc_status(error), error.message, trailing_metadata=tuple(trailing))

    async def _unary(
        self,
        request: Any,
        context: grpc.aio.ServicerContext,
        call: Callable[[Any], Awaitable[Any]],
    ) -> Any:
        try:
            await self._authorize(context)
            if isinstance(request, Undecodable):
                raise request.error
            async with self.state.admission.slot("faces"):
                return await call(request)
        except GantryError as error:
            await self._abort(context, error)
            raise

    async def Detect(self, request: Any, context: grpc.aio.ServicerContext) -> Any:  # noqa: N802
        async def call(r: faces_pb2.DetectRequest) -> faces_pb2.DetectResponse:
            result = await self.faces.detect(
                data=r.image,
                detector=r.detector or None,
                min_score=_float(r, "min_score"),
                version=_version(r),
            )
            return faces_pb2.DetectResponse(
                width=result.width,
                height=result.height,
                faces=[face_message(f) for f in result.faces],
                models=[faces_pb2.ModelVersion(name=n, version=v) for n, v in result.models],
            )

        return await self._unary(request, context, call)

    async def Embed(self, request: Any, context: grpc.aio.ServicerContext) -> Any:  # noqa: N802
        async def call(r: faces_pb2.EmbedRequest) -> faces_pb2.EmbedResponse:
            result = await self.faces.embed(
                data=r.image,
                model=r.model or None,
                version=_version(r),
                detector=r.detector or None,
                align=r.align or None,
                frontalize=r.frontalize,
            )
            return faces_pb2.EmbedResponse(
                width=result.width,
                height=result.height,
                faces=[face_message(f) for f in result.faces],
                model=result.model,
                model_version=result.version,
            )

        return await self._unary(request, context, call)

    async def Landmarks(self, request: Any, context: grpc.aio.ServicerContext) -> Any:  # noqa: N802
        async def call(r: faces_pb2.LandmarksRequest) -> faces_pb2.LandmarksResponse:
            result = await self.faces.landmarks(
                data=r.image,
                model=r.model or None,
                version=_version(r),
                detector=r.detector or None,
                min_score=_float(r, "min_score"),
            )
            return faces_pb2.LandmarksResponse(
                width=result.width,
                height=result.height,
                faces=[face_message(f) for f in result.faces],
                model=result.model,
                model_version=result.version,
                scheme=result.scheme,
                detectors=[faces_pb2.ModelVersion(name=n, version=v) for n, v in result.models],
            )

        return await self._unary(request, context, call)

    async def Frontalize(self, request: Any, context: grpc.aio.ServicerContext) -> Any:  # noqa: N802
        async def call(r: faces_pb2.FrontalizeRequest) -> faces_pb2.FrontalizeResponse:
            result = await self.faces.frontalize(
                data=r.image,
                model=r.model or None,
                version=_version(r),
                detector=r.detector or None,
                min_score=_float(r, "min_score"),
            )
            name, landmark_version = result.landmark_model
            return faces_pb2.FrontalizeResponse(
                width=result.width,
                height=result.height,
                faces=[
                    faces_pb2.FrontalFace(box=f.box, score=f.score, image=grey_png(chip))
                    for f, chip in zip(
                        (f.rounded() for f in result.faces), result.chips, strict=True
                    )
                ],
                model=result.model,
                model_version=result.version,
                landmark_model=faces_pb2.ModelVersion(name=name, version=landmark_version),
                detectors=[faces_pb2.ModelVersion(name=n, version=v) for n, v in result.models],
            )

        return await self._unary(request, context, call)

    async def _verify(self, request: faces_pb2.VerifyRequest) -> faces_pb2.VerifyResponse:
        result = await self.faces.verify(
            data_a=request.image_a,
            data_b=request.image_b,
            model=request.model or None,
            version=_version(request),
            threshold=_float(request, "threshold"),
            align=request.align or None,
            frontalize=request.frontalize,
        )
        return verify_message(result, request.id)

    async def Verify(self, request: Any, context: grpc.aio.ServicerContext) -> Any:  # noqa: N802
        return await self._unary(request, context, self._verify)

    async def VerifyStream(  # noqa: N802
        self, request_iterator: AsyncIterator[Any], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[faces_pb2.VerifyResponse]:
        try:
            await self._authorize(context)
        except GantryError as error:
            await self._abort(context, error)
            raise
        # One bad pair must not end the stream: its answer carries the error instead.
        async for request in request_iterator:
            request_id = "" if isinstance(request, Undecodable) else request.id
            try:
                if isinstance(request, Undecodable):
                    raise request.error
                async with self.state.admission.slot("faces"):
                    yield await self._verify(request)
            except GantryError as error:
                yield faces_pb2.VerifyResponse(
                    id=request_id, error=faces_pb2.Error(code=error.code, message=error.message)
                )


def _handlers(servicer: FaceVerificationServicer) -> grpc.GenericRpcHandler:
    """The service's method handlers, built from its descriptor with forgiving parsers."""
    handlers = {}
    for method in SERVICE.methods:
        request_type = getattr(faces_pb2, method.input_type.name)
        response_type = getattr(faces_pb2, method.output_type.name)
        behaviour = getattr(servicer, method.name)
        make = (
            grpc.stream_stream_rpc_method_handler
            if method.client_streaming and method.server_streaming
            else grpc.unary_unary_rpc_method_handler
        )
        handlers[method.name] = make(
            behaviour,
            request_deserializer=_parser(request_type),
            response_serializer=response_type.SerializeToString,
        )
    return grpc.method_handlers_generic_handler(SERVICE_NAME, handlers)


async def start_grpc_server(state: AppState) -> grpc.aio.Server:
    """Start the gRPC server (FaceVerification, health, reflection) and return it."""
    settings = state.settings
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", settings.grpc_max_message_bytes),
            ("grpc.max_send_message_length", settings.grpc_max_message_bytes),
        ]
    )
    server.add_generic_rpc_handlers((_handlers(FaceVerificationServicer(state)),))
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
    if server.add_insecure_port(f"{settings.gateway_host}:{settings.grpc_port}") == 0:
        raise RuntimeError(
            f"cannot listen for gRPC on {settings.gateway_host}:{settings.grpc_port}"
        )
    await server.start()
    for name in ("", SERVICE_NAME):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    return server
