"""Every pipeline, built once per process from the settings, and chosen by task.

The gateway holds one :class:`Pipelines` for its lifetime; a job worker makes one per job.
Both share one Triton client and one catalog per instance, so a version published while they
run is visible to every pipeline at once.
"""

from __future__ import annotations

from collections.abc import Callable

from gantry.core.registry import Registry
from gantry.core.settings import Settings
from gantry.serving.catalog import ModelCatalog
from gantry.serving.edit import EditPipeline
from gantry.serving.faces.service import FacePipeline
from gantry.serving.generate import GeneratePipeline
from gantry.serving.image_to_image import ImageToImagePipeline, ThroughputEstimator
from gantry.serving.inpaint import INPAINT_TASKS, InpaintPipeline
from gantry.serving.synthesis import SynthesisPipeline
from gantry.serving.translate import TranslatePipeline
from gantry.serving.triton import TritonClient

Pipeline = (
    ImageToImagePipeline
    | SynthesisPipeline
    | FacePipeline
    | EditPipeline
    | InpaintPipeline
    | GeneratePipeline
)
# Which pipeline serves the models of each task.
PIPELINES: Registry[Callable[[Pipelines], Pipeline]] = Registry("task")


class Pipelines:
    """The serving pipelines of one process."""

    def __init__(
        self,
        settings: Settings,
        *,
        triton: TritonClient | None = None,
        catalog: ModelCatalog | None = None,
    ) -> None:
        self.settings = settings
        self.triton = triton or TritonClient(
            settings.triton_url, timeout_s=settings.triton_timeout_s
        )
        self.catalog = catalog or ModelCatalog(settings.model_repository)
        estimator = ThroughputEstimator(settings.serving_gflops)
        self.superres = ImageToImagePipeline(
            triton=self.triton,
            catalog=self.catalog,
            settings=settings,
            estimator=estimator,
            tasks=("superres",),
            default_model=settings.default_superres_model,
            batch_kind="superres_batch",
        )
        self.image_to_image = ImageToImagePipeline(
            triton=self.triton,
            catalog=self.catalog,
            settings=settings,
            estimator=estimator,
            tasks=("image_to_image",),
            default_model=settings.default_translate_model or None,
            batch_kind="superres_batch",  # the batch job runs image_to_image models too
        )
        self.deblur = ImageToImagePipeline(
            triton=self.triton,
            catalog=self.catalog,
            settings=settings,
            estimator=estimator,
            tasks=("deblur",),
            default_model=settings.default_deblur_model or None,
            batch_kind="superres_batch",  # the batch job runs deblur models too
        )
        self.inpaint = InpaintPipeline(
            image_to_image=ImageToImagePipeline(
                triton=self.triton,
                catalog=self.catalog,
                settings=settings,
                estimator=estimator,
                tasks=INPAINT_TASKS,
                default_model=settings.default_inpaint_model or None,
            )
        )
        self.translate = TranslatePipeline(image_to_image=self.image_to_image)
        self.synthesis = SynthesisPipeline(catalog=self.catalog, image_to_image=self.image_to_image)
        self.edit = EditPipeline(
            triton=self.triton,
            catalog=self.catalog,
            settings=settings,
            default_model=settings.default_edit_model or None,
        )
        self.generate = GeneratePipeline(
            triton=self.triton,
            catalog=self.catalog,
            settings=settings,
            default_model=settings.default_generate_model or None,
        )
        self.faces = FacePipeline(
            triton=self.triton, catalog=self.catalog, settings=settings, estimator=estimator
        )

    def for_task(self, task: str) -> Pipeline:
        """The pipeline serving models of ``task``; the error lists the served tasks."""
        return PIPELINES.get(task)(self)

    async def close(self) -> None:
        await self.triton.close()


PIPELINES.add("superres", lambda p: p.superres)
PIPELINES.add("image_to_image", lambda p: p.image_to_image)
PIPELINES.add("deblur", lambda p: p.deblur)
PIPELINES.add("inpaint", lambda p: p.inpaint)
PIPELINES.add("synthesis", lambda p: p.synthesis)
PIPELINES.add("face_detection", lambda p: p.faces)
PIPELINES.add("face_detection_stage", lambda p: p.faces)
PIPELINES.add("face_embedding", lambda p: p.faces)
PIPELINES.add("face_landmarks", lambda p: p.faces)
PIPELINES.add("face_frontalization", lambda p: p.faces)
PIPELINES.add("face_edit", lambda p: p.edit)
PIPELINES.add("generation", lambda p: p.generate)
