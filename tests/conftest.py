import os

# mmengine and torchreid call torch.load without weights_only on their own checkpoints.
os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
