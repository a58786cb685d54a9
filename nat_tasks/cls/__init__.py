"""Classification: data sets, models (and, later, training and evaluation) for NAT.

Importing this package registers the data sets in mmengine's registry, so a config can say
``custom_imports=dict(imports=['nat_tasks.cls'])``.
"""
from . import data  # noqa: F401
from . import models  # noqa: F401
from . import classifier  # noqa: F401  (AdversarialClassifier, AdversarialAccuracy)
from . import hooks  # noqa: F401  (EpochSeedHook, EpsWarmupHook, reseed_worker)
from nat_tasks.core import mmengine_atomic  # noqa: F401  (the 'atomic_local' checkpoint backend)
from nat_tasks import runtime  # noqa: F401  (checkpoints load weights-only, mmengine's resume too)
