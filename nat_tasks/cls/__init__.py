"""Classification for NAT, in subpackages by job:

- ``data``: the data sets (CIFAR-10/100, the embedded MNIST digits, ImageNet-100 trees, generated data);
- ``models``: the networks (``Classifier``, the architectures, RobustBench definitions, weights);
- ``methods``: the training methods' losses (PGD-AT, TRADES, MART, AWP, distillation, NAT, ...);
- ``training``: the mmengine trainer (model, its config sections, hooks, metric, SAM, runner);
- ``evaluation``: attacks, evaluation and its resumable state, the checklist, the report;
- ``analysis``: the analysis figures; ``demos``: the demos and the sweep driver.

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
from nat_tasks.cls.data import data  # noqa: F401
from nat_tasks.cls.training import hooks, metric, sam, soft_targets_section, teacher_section  # noqa: F401

from nat_tasks.cls.analysis import analyze_models
from nat_tasks.cls.data.subsets import subset_indices
from nat_tasks.cls.evaluation.attacks import REGISTRY as ATTACKS, ThreatModel
from nat_tasks.cls.evaluation.checklist import gradient_masking_checklist
from nat_tasks.cls.evaluation.evaluation import evaluate
from nat_tasks.cls.methods import METHODS, build_method
from nat_tasks.cls.models.architectures import CLASSIFIERS, build_classifier
from nat_tasks.cls.models.classifier import Classifier
from nat_tasks.cls.models.weights import classifier_from_config, load_classifier_weights
from nat_tasks.cls.training.adversarial_classifier import AdversarialClassifier
from nat_tasks.cls.training.metric import AdversarialAccuracy
from nat_tasks.cls.training.nasty_section import build_adversary, nasty_spec
from nat_tasks.cls.training.train import build_runner, last_checkpoint, load_cls_config, train

__all__ = ["analyze_models", "AdversarialClassifier", "CLASSIFIERS", "Classifier", "build_classifier", "ATTACKS",
           "ThreatModel", "gradient_masking_checklist", "evaluate", "subset_indices", "METHODS", "build_method",
           "AdversarialAccuracy", "build_adversary", "nasty_spec", "build_runner", "last_checkpoint",
           "load_cls_config", "train", "classifier_from_config", "load_classifier_weights"]
