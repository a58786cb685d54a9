"""Person re-identification: NAT and AMD as a torchreid plug-in, driven by configs/reid/.

- ``config``: the config sections (torchreid's shape in mmengine files) and ``reid_config``.
- ``data`` / ``synthetic``: torchreid's data manager on [0, 1] images, layout checks, the generated
  Market tree (``synthetic_market1501``).
- ``model``: torchreid models that normalise inside; our and torchreid's checkpoints.
- ``attacks``: the metric attacks FNA, SMA, IFGSM/AMA and the NAT-adaptive attack on each, a
  registry of classes on the core engine.
- ``adversary``: NAT's frozen adversary from ``model.nasty`` (core vocabulary), its vanilla
  counterpart.
- ``engine.AdversarialTripletEngine``: torchreid's triplet engine with AMD and the nasty term.
- ``train``: a training run from a config (one process, or DDP under torchrun: ``distributed``);
  ``evaluation``: the run of ``tools/test_reid.py``;
  ``demo``: the embedded flow; ``cli``: both tools' command lines.
- ``ranking``: Market-1501 CMC / mAP as torchreid's; ``robustness``: clean / attacked scores with
  intervals, paired differences, the Table 12 report; ``worst_case``: the worst case per query;
  ``checklist``: gradient-masking checks.
"""
from nat_tasks import runtime  # noqa: F401  (checkpoints load weights-only, with the allow-list)

from .attacks import REGISTRY, MetricAttack, attack_kinds, build_attack
from .config import METHODS, config_file, method_of, reid_config
from .demo import demo
from .engine import AdversarialTripletEngine
from .evaluation import evaluate
from .ranking import chance_scores, query_ranking, rank
from .train import train

__all__ = ["REGISTRY", "MetricAttack", "attack_kinds", "build_attack", "METHODS", "config_file",
           "method_of", "reid_config", "demo", "AdversarialTripletEngine", "evaluate",
           "chance_scores", "query_ranking", "rank", "train"]
