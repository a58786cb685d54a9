"""Task-agnostic NAT pieces: the nasty regularizer, the frozen adversary, the attack engine.

Nothing here imports a task, mmdet or torchreid, so the core stays usable with plain PyTorch.
"""
