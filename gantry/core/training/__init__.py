"""Training configs: typed schemas (one per recipe) and the YAML files Gantry ships.

A config is a YAML file: a ``base`` it extends (another shipped config), then its own keys;
``--set key=value`` overrides (dotted keys reach into sections) come last, and the result is
validated by the recipe's schema, so a typo fails on load with the field's name. The schemas
live here, beside the model cards and without torch, because the gateway validates a training
job's config at submission; the recipes that run them live in ``trainer/recipes``.
"""

from gantry.core.training.loader import (
    CONFIG_DIR,
    load_train_config,
    parse_overrides,
    shipped_configs,
)
from gantry.core.training.schema import (
    CONFIG_TYPES,
    CAPGGANConfig,
    ComboGANConfig,
    CycleGANConfig,
    DataConfig,
    DeblurGANConfig,
    ESRGANConfig,
    FrontalizationConfig,
    GeneGANConfig,
    GLCICConfig,
    IcGANConfig,
    IcGANStages,
    OptimConfig,
    PerceptualTerm,
    PFLDConfig,
    Pix2PixConfig,
    Pix2PixHDConfig,
    ProGANConfig,
    ProGANSchedule,
    RecognitionConfig,
    SRGANConfig,
    StarGANConfig,
    StarGANv2Config,
    SuperResolutionConfig,
    TPGANConfig,
    TrainConfig,
    UnpairedTranslationConfig,
)

__all__ = [
    "CONFIG_DIR",
    "CONFIG_TYPES",
    "CAPGGANConfig",
    "ComboGANConfig",
    "CycleGANConfig",
    "DataConfig",
    "DeblurGANConfig",
    "ESRGANConfig",
    "FrontalizationConfig",
    "GLCICConfig",
    "GeneGANConfig",
    "IcGANConfig",
    "IcGANStages",
    "OptimConfig",
    "PFLDConfig",
    "PerceptualTerm",
    "Pix2PixConfig",
    "Pix2PixHDConfig",
    "ProGANConfig",
    "ProGANSchedule",
    "RecognitionConfig",
    "SRGANConfig",
    "StarGANConfig",
    "StarGANv2Config",
    "SuperResolutionConfig",
    "TPGANConfig",
    "TrainConfig",
    "UnpairedTranslationConfig",
    "load_train_config",
    "parse_overrides",
    "shipped_configs",
]
