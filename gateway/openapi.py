"""The OpenAPI document as a client generator needs it, and the docs served offline.

FastAPI's schema is completed here with what only the running platform knows:

* ``model`` and ``detector`` form fields are enums of the models in the catalog (per task)
  and the registered detectors; the document is rebuilt when the catalog changes;
* ``JobRequest``: the body of ``POST /v1/jobs``, a union of every job kind's parameters
  discriminated by ``kind``, built from the kinds table;
* file fields carry ``format: binary`` (OpenAPI 3.1 FastAPI writes ``contentMediaType``
  only, which generators such as openapi-python-client do not read as a file);
* every 422 documents the contract's error body, not FastAPI's ``detail`` list.

Swagger UI and ReDoc load their scripts from the installed ``fastapi-offline`` package, not a
CDN, so ``/docs`` works without internet access.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, create_model

from gantry.serving.catalog import ModelCatalog
from gantry.serving.faces.service import DETECTOR_ALIGNMENT, DETECTORS
from gateway.errors import ERROR_DESCRIPTIONS
from gateway.frontdoor import OPEN_PATHS
from workers.interface import JOB_KINDS

DOCS_STATIC = "/docs/static"

# (path, form field) → the tasks whose model names it takes.
MODEL_FIELDS: dict[tuple[str, str], tuple[str, ...]] = {
    ("/v1/superres", "model"): ("superres",),
    ("/v1/translate", "model"): ("image_to_image", "style_translation"),
    ("/v1/edit", "model"): ("face_edit",),
    ("/v1/deblur", "model"): ("deblur",),
    ("/v1/inpaint", "model"): ("inpaint",),
    ("/v1/generate", "model"): ("generation",),
    ("/v1/faces/embed", "model"): ("face_embedding",),
    ("/v1/faces/verify", "model"): ("face_embedding",),
    ("/v1/faces/landmarks", "model"): ("face_landmarks",),
    ("/v1/faces/frontalize", "model"): ("face_frontalization",),
}
ALIGN_PATHS = ("/v1/faces/embed", "/v1/faces/verify")
DETECTOR_FIELDS = (
    ("/v1/faces/detect", "detector"),
    ("/v1/faces/embed", "detector"),
    ("/v1/faces/landmarks", "detector"),
    ("/v1/faces/frontalize", "detector"),
)


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


def job_request_models() -> list[type[BaseModel]]:
    """One ``{"kind": <literal>, "params": <its model>}`` model per job kind."""
    models: list[type[BaseModel]] = []
    for name, kind in JOB_KINDS.items():
        model = create_model(
            f"{_camel(name)}Job",
            __doc__=kind.description or f"a {name} job",
            __config__=ConfigDict(extra="forbid"),
            kind=(Literal[name], name),  # type: ignore[arg-type]
            params=(kind.params, ...),
        )
        models.append(model)
    return models


def job_request_schema() -> tuple[dict[str, Any], dict[str, Any]]:
    """(the JobRequest schema, the component schemas it refers to)."""
    variants = job_request_models()
    union: Any = variants[0]
    for model in variants[1:]:
        union = union | model
    adapter: TypeAdapter[Any] = TypeAdapter(Annotated[union, Field(discriminator="kind")])
    schema = adapter.json_schema(ref_template="#/components/schemas/{model}")
    defs = schema.pop("$defs", {})
    schema["title"] = "JobRequest"
    schema["description"] = "A job: its kind and that kind's parameters."
    return schema, defs


def _body_schema(spec: dict[str, Any], path: str) -> dict[str, Any] | None:
    """The component schema of a POST route's form body: multipart, or URL-encoded for a
    route without files (POST /v1/generate)."""
    operation = spec.get("paths", {}).get(path, {}).get("post", {})
    content = operation.get("requestBody", {}).get("content", {})
    form = content.get("multipart/form-data") or content.get("application/x-www-form-urlencoded")
    ref = (form or {}).get("schema", {}).get("$ref", "")
    return spec["components"]["schemas"].get(ref.rsplit("/", 1)[-1]) if ref else None


def _enum_property(prop: dict[str, Any], ref: str) -> dict[str, Any]:
    """An optional string property re-pointed at a named enum schema."""
    keep = {k: v for k, v in prop.items() if k in ("title", "description")}
    return {**keep, "$ref": f"#/components/schemas/{ref}"}


def _without_null(prop: dict[str, Any]) -> dict[str, Any]:
    """A form field's schema without the ``null`` branch of ``X | None``.

    A multipart form cannot send null: an optional field is one that is left out.
    """
    branches = prop.get("anyOf")
    if not isinstance(branches, list):
        return prop
    kept = [b for b in branches if b != {"type": "null"}]
    if len(kept) != 1 or len(kept) == len(branches):
        return prop
    rest = {k: v for k, v in prop.items() if k != "anyOf"}
    return {**rest, **kept[0]}


def _mark_binary(node: Any) -> None:
    """Add ``format: binary`` to every string schema that FastAPI marked as file content."""
    if isinstance(node, dict):
        if node.get("type") == "string" and "contentMediaType" in node:
            node["format"] = "binary"
        for value in node.values():
            _mark_binary(value)
    elif isinstance(node, list):
        for value in node:
            _mark_binary(value)


def _contract_errors(spec: dict[str, Any]) -> None:
    """Point every 422 FastAPI documents with its own ``detail`` list at the contract's body."""
    for operations in spec.get("paths", {}).values():
        for operation in operations.values():
            response = operation.get("responses", {}).get("422")
            schema = response.get("content", {}).get("application/json", {}) if response else {}
            if schema.get("schema", {}).get("$ref", "").endswith("/HTTPValidationError"):
                schema["schema"] = {"$ref": "#/components/schemas/ErrorBody"}
                response["description"] = "Invalid request"
    schemas = spec.get("components", {}).get("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)


def _security(spec: dict[str, Any]) -> None:
    """Declare the API keys and require one on every operation the front door guards."""
    spec["components"]["securitySchemes"] = {
        "ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
        "Bearer": {"type": "http", "scheme": "bearer"},
    }
    for path, operations in spec.get("paths", {}).items():
        if path in OPEN_PATHS:
            continue
        for operation in operations.values():
            operation["security"] = [{"ApiKey": []}, {"Bearer": []}]
            responses = operation.setdefault("responses", {})
            for status in (401, 403, 429):
                responses[str(status)] = {
                    "description": ERROR_DESCRIPTIONS[status],
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}
                    },
                }


def complete_schema(
    spec: dict[str, Any], catalog: ModelCatalog, *, keys: bool = False
) -> dict[str, Any]:
    """Add the enums, the job request union and binary formats to FastAPI's document (and
    the API key schemes when ``keys``)."""
    _contract_errors(spec)
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    for (path, field), tasks in MODEL_FIELDS.items():
        body = _body_schema(spec, path)
        names = catalog.names(tasks)
        if body is None or field not in body.get("properties", {}) or not names:
            continue
        ref = f"{_camel(tasks[0])}Model"
        schemas[ref] = {"type": "string", "enum": names, "title": ref}
        body["properties"][field] = _enum_property(body["properties"][field], ref)
    schemas["Detector"] = {"type": "string", "enum": DETECTORS.names(), "title": "Detector"}
    alignments = [DETECTOR_ALIGNMENT, *catalog.names(("face_landmarks",))]
    schemas["Alignment"] = {"type": "string", "enum": alignments, "title": "Alignment"}
    for path in ALIGN_PATHS:
        body = _body_schema(spec, path)
        if body is not None and "align" in body.get("properties", {}):
            body["properties"]["align"] = _enum_property(body["properties"]["align"], "Alignment")
    for path, field in DETECTOR_FIELDS:
        body = _body_schema(spec, path)
        if body is not None and field in body.get("properties", {}):
            body["properties"][field] = _enum_property(body["properties"][field], "Detector")
    for name, body in schemas.items():
        if name.startswith("Body_") and body.get("type") == "object":
            body["additionalProperties"] = False  # gateway.fields.strict_form refuses extras
            body["properties"] = {k: _without_null(v) for k, v in body["properties"].items()}
    job_request, defs = job_request_schema()
    schemas.update(defs)
    schemas["JobRequest"] = job_request
    schemas["JobKind"] = {"type": "string", "enum": JOB_KINDS.names(), "title": "JobKind"}
    _mark_binary(spec)
    if keys:
        _security(spec)
    return spec


def install_openapi(app: FastAPI, catalog: ModelCatalog, *, keys: bool = False) -> None:
    """Serve the completed document, rebuilt whenever the model repository changes."""
    cache: dict[str, Any] = {}

    def openapi() -> dict[str, Any]:
        signature = catalog.repository.signature()
        if cache.get("signature") != signature or "spec" not in cache:
            spec = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            cache["spec"] = complete_schema(spec, catalog, keys=keys)
            cache["signature"] = signature
        result: dict[str, Any] = cache["spec"]
        return result

    app.openapi = openapi  # type: ignore[method-assign]


def _static_dir() -> Path:
    return Path(str(files("fastapi_offline") / "static"))


def install_docs(app: FastAPI) -> None:
    """``/docs`` (Swagger UI) and ``/redoc`` from the installed package's files."""
    app.mount(DOCS_STATIC, StaticFiles(directory=_static_dir()), name="docs-static")
    title = f"{app.title} {app.version}"
    favicon = f"{DOCS_STATIC}/favicon.png"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title=title,
            swagger_js_url=f"{DOCS_STATIC}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_STATIC}/swagger-ui.css",
            swagger_favicon_url=favicon,
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url="/openapi.json",
            title=title,
            redoc_js_url=f"{DOCS_STATIC}/redoc.standalone.js",
            redoc_favicon_url=favicon,
            with_google_fonts=False,
        )
