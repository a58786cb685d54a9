"""Person re-identification: NAT and AMD as a torchreid plug-in.

- ``evaluate.rank``: Market-1501 CMC/mAP with faiss retrieval (equal to torchreid's numbers).
- ``attacks``: metric attacks FNA, SMA, IFGSM/AMA on the shared attack engine.
- ``engine.AdversarialTripletEngine``: torchreid's triplet engine with AMD and the nasty term.
- ``robustness``: clean / attacked evaluation in the paper's Table 12 layout.
- ``data`` / ``synthetic``: torchreid data in [0, 1], layout checks, the generated Market tree.
- ``runner``: what ``tools/train_reid.py`` runs.
"""
from nat_tasks import runtime  # noqa: F401  (checkpoints load weights-only, with the allow-list)
