"""Classification for NAT: data sets, networks, training methods, the mmengine trainer, attacks,
evaluation and the analysis figures (``analysis``).

Importing this package registers the data sets, the model, the metric, the hooks and the SAM
optimizer wrapper in mmengine's registries (a config says
``custom_imports=dict(imports=['nat_tasks.cls'])``), the model's config sections ``model.teacher`` and
``model.soft_targets`` (``model.nasty`` is built in), the 'atomic_local' checkpoint backend, and makes every
checkpoint load weights-only (``nat_tasks.runtime``).

    from nat_tasks.cls import build_classifier, evaluate, ThreatModel
"""
from nat_tasks import runtime  # noqa: F401  (weights-only checkpoint loads; the 'atomic_local' backend)

# mmengine registrations (data sets, hooks, metric, SAMOptimWrapper) and the model's config
# sections model.teacher (distillation) and model.soft_targets (self-adaptive soft labels)
from . import data, hooks, metric, sam, soft_targets_section, teacher_section  # noqa: F401
from .adversarial_classifier import AdversarialClassifier
from .analysis import analyze_models
from .architectures import CLASSIFIERS, Classifier, build_classifier
from .attacks import REGISTRY as ATTACKS, ThreatModel
from .checklist import gradient_masking_checklist
from .evaluation import evaluate, subset_indices
from .methods import METHODS, build_method
from .metric import AdversarialAccuracy
from .nasty_section import build_adversary, nasty_spec
from .train import build_runner, last_checkpoint, load_cls_config, train
from .weights import classifier_from_config, load_classifier_weights

__all__ = ["analyze_models", "AdversarialClassifier", "CLASSIFIERS", "Classifier", "build_classifier", "ATTACKS",
           "ThreatModel", "gradient_masking_checklist", "evaluate", "subset_indices", "METHODS", "build_method",
           "AdversarialAccuracy", "build_adversary", "nasty_spec", "build_runner", "last_checkpoint",
           "load_cls_config", "train", "classifier_from_config", "load_classifier_weights"]
