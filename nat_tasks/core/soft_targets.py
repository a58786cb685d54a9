"""Self-adaptive training's per-example soft targets (SAT; Huang, Zhang, Zhang, NeurIPS 2020),
plain PyTorch: the soft labels of Fast-LS-l0 and of SAT + TRADES.

Every training example ``i`` has a target ``t_i`` (a probability vector over the C classes). From
the start epoch on, each time the example is trained on

    t_i <- m * t_i + (1 - m) * softmax(f(x_i))        (clean logits, detached; m = 0.9)

and the loss is ``mean_i w_i * CE(t_i, f(x_i))`` with ``w_i = max_j t_ij`` rescaled to mean 1 over
the batch (``self_adaptive_ce``). CHECKED against the reference code (LayneH/self-adaptive-training,
``losses/loss.py`` and ``losses/trades.py``, read, not copied): the rule, m = 0.9, the update made
*before* the loss so the loss uses the updated targets, the weights, plain CE before the start
epoch (our one-hot targets with weights 1 are exactly that). The start epoch is a setting: the
reference's is 70 of 100 epochs (SAT + TRADES) or 40; Fast-LS-l0's is NOT CHECKED.

Our choices:
- Lazy initialisation: the buffer ``targets`` (N, C) grows to the largest index seen; a row of
  zeros means "never updated" and reads as the one-hot of the example's label. So no data set size
  is configured, and the buffer changes only through ``update`` (all-gathered: below).
- The current epoch comes from ``epoch_source`` (a callable; the classification section reads
  mmengine's message hub, which the runner's ``RuntimeInfoHook`` sets at each epoch's start and
  after a resume), or from ``set_epoch`` in a plain PyTorch loop.
- DDP: ``update`` all-gathers the (index, new target) pairs of every rank and every rank writes
  all of them, so all ranks hold identical targets. An index updated by two ranks in one step
  (the distributed sampler pads the last batch by repeating examples) keeps the update of the
  highest rank (``merge_updates``), the same choice on every rank.
- Resume: ``targets`` is a buffer (saved under ``method_state.<name>`` of the classifier); loading
  resizes it to the saved number of rows first, so a resumed run holds them bit for bit.
"""
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from .errors import NatError

DEFAULT_MOMENTUM = 0.9


def merge_updates(index, rows):
    """``(index, rows)`` with each index once, keeping its last occurrence (sorted by index)."""
    unique, inverse = torch.unique(index, return_inverse=True)
    order = torch.arange(len(index), device=index.device)
    last = torch.full((len(unique),), -1, dtype=torch.long, device=index.device)
    last = last.scatter_reduce(0, inverse, order, reduce="amax")
    return unique, rows[last]


def all_gather_updates(index, rows):
    """Every rank's ``(index, rows)`` concatenated in rank order (the inputs alone without a
    process group). Batches of different sizes are padded for the collective and cut back."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return index, rows
    world = dist.get_world_size()
    size = torch.tensor([len(index)], device=index.device)
    sizes = [torch.zeros_like(size) for _ in range(world)]
    dist.all_gather(sizes, size)
    longest = int(max(sizes))
    padded_index = F.pad(index, (0, longest - len(index)))
    padded_rows = F.pad(rows, (0, 0, 0, longest - len(rows)))
    all_index = [torch.zeros_like(padded_index) for _ in range(world)]
    all_rows = [torch.zeros_like(padded_rows) for _ in range(world)]
    dist.all_gather(all_index, padded_index)
    dist.all_gather(all_rows, padded_rows)
    cut = [int(n) for n in sizes]
    return (torch.cat([t[:n] for t, n in zip(all_index, cut)]),
            torch.cat([t[:n] for t, n in zip(all_rows, cut)]))


class SoftTargets(nn.Module):
    """Per-example soft targets; ``forward(index, labels, probabilities)`` gives the batch's targets.

    - ``num_classes``; ``momentum`` (m of the rule, 0.9); ``start_epoch``: the first epoch
      (0-based) whose steps update the targets (before it the targets are one-hot: plain CE).
    - ``epoch_source``: a callable returning the current epoch; without it, ``set_epoch``.
    """

    def __init__(self, num_classes, momentum=DEFAULT_MOMENTUM, start_epoch=0, epoch_source=None):
        super().__init__()
        if not 0.0 <= float(momentum) < 1.0:
            raise NatError(f"soft_targets momentum={momentum} is outside [0, 1)")
        if isinstance(start_epoch, bool) or int(start_epoch) != start_epoch or start_epoch < 0:
            raise NatError(f"soft_targets start_epoch={start_epoch} must be a whole number >= 0")
        self.num_classes, self.momentum, self.start_epoch = int(num_classes), float(momentum), int(start_epoch)
        self.epoch_source = epoch_source
        self._epoch = None
        self.register_buffer("targets", torch.zeros(0, self.num_classes))

    def set_epoch(self, epoch):
        self._epoch = int(epoch)

    @property
    def epoch(self):
        epoch = self.epoch_source() if self.epoch_source is not None else self._epoch
        if epoch is None:
            raise NatError("soft targets need the current epoch: train through the mmengine runner "
                           "(tools/train_cls.py) or call set_epoch(epoch) at each epoch's start")
        return int(epoch)

    @property
    def started(self):
        return self.epoch >= self.start_epoch

    def lookup(self, index, labels):
        """The current targets of examples ``index`` (B, C); never-updated rows: one-hot(labels)."""
        index = index.to(self.targets.device)
        rows = torch.zeros(len(index), self.num_classes, device=self.targets.device)
        stored = index < len(self.targets)
        rows[stored] = self.targets[index[stored]]
        unset = rows.sum(dim=1) == 0
        rows[unset] = F.one_hot(labels.to(rows.device)[unset], self.num_classes).to(rows.dtype)
        return rows

    def update(self, index, probabilities, labels):
        """Apply the rule to examples ``index`` with the model's (detached) ``probabilities``, on
        every rank (all-gathered); returns this rank's new targets (B, C)."""
        new = self.momentum * self.lookup(index, labels) + (1 - self.momentum) * probabilities.detach().float()
        all_index, all_rows = merge_updates(*all_gather_updates(index.to(new.device), new))
        self._grow(int(all_index.max()) + 1 if len(all_index) else 0)
        self.targets[all_index] = all_rows
        return new

    def forward(self, index, labels, probabilities):
        """The batch's targets for this step: updated first from the start epoch on (as the
        reference), the stored / one-hot ones before it."""
        if self.started:
            return self.update(index, probabilities, labels)
        return self.lookup(index, labels)

    def _grow(self, rows):
        if rows > len(self.targets):
            extra = self.targets.new_zeros(rows - len(self.targets), self.num_classes)
            self.targets = torch.cat([self.targets, extra])

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        saved = state_dict.get(prefix + "targets")
        if saved is not None and saved.dim() == 2 and saved.shape[0] != len(self.targets):
            # resize the rows only: a different number of classes is still a size-mismatch error
            self.targets = self.targets.new_zeros(saved.shape[0], self.num_classes)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def extra_repr(self):
        return (f"num_classes={self.num_classes}, momentum={self.momentum}, start_epoch={self.start_epoch}, "
                f"examples_seen={len(self.targets)}")


def self_adaptive_ce(logits, targets):
    """SAT's loss: ``mean_i w_i * CE(t_i, f(x_i))``, ``w_i = max_j t_ij`` rescaled to mean 1."""
    weights = targets.max(dim=1).values
    weights = weights * len(weights) / weights.sum()
    return (weights * -(targets * F.log_softmax(logits, dim=1)).sum(dim=1)).mean()
