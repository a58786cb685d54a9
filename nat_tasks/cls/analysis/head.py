"""The final linear classifier of a network and its input, the penultimate features.

Every classification architecture of ``cls/models/architectures.py`` ends in an ``nn.Linear`` whose output
is the network's output (``logits = W f + b``); ``final_linear`` finds it by one forward pass (the
``nn.Linear`` whose output tensor *is* the model's output), so it needs no per-architecture code.
``forward_features`` then reads ``f`` with a forward hook on that layer's input.
"""
import sys

import torch
from torch import nn

from nat_tasks.core.errors import NatError

REQUIREMENT = ("needs a network whose output is the output of an nn.Linear (a final linear classifier, "
               "logits = W f + b)")


def final_linear(model, example, what="the model"):
    """The ``nn.Linear`` whose output is ``model(example)``; a one-line ``NatError`` if there is none."""
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    outputs = []
    hooks = [m.register_forward_hook(lambda module, inputs, output: outputs.append((module, output)))
             for m in linears]
    try:
        with torch.no_grad():
            logits = model(example)
    finally:
        for hook in hooks:
            hook.remove()
    for module, output in reversed(outputs):
        if output is logits:
            return module
    raise NatError(f"the analysis {REQUIREMENT}; {what} ({type(_net(model)).__name__}) does not end in one")


def _net(model):
    return getattr(model, "net", model)


@torch.no_grad()
def forward_features(model, x, *, batch_size=256, device=None, progress=False, what="the model"):
    """``dict(features=(N, D), logits=(N, C), weight=(C, D), bias=(C,))`` on the CPU, in float32.

    ``features`` is the input of the final ``nn.Linear`` (``final_linear``), captured with a forward
    hook in eval mode; ``logits = features @ weight.T + bias`` up to rounding.
    """
    device = device or next(model.parameters()).device
    model = model.to(device).eval()
    head = final_linear(model, x[:1].to(device), what)
    captured = []
    hook = head.register_forward_hook(lambda module, inputs, output: captured.append(inputs[0].detach().flatten(1)))
    features, logits = [], []
    try:
        from tqdm import tqdm
        starts = tqdm(range(0, len(x), batch_size), desc=f"features of {what}", unit="batch", file=sys.stderr,
                      disable=not progress, leave=False)
        for i in starts:
            captured.clear()
            logits.append(model(x[i:i + batch_size].to(device)).float().cpu())
            features.append(captured[-1].float().cpu())
    finally:
        hook.remove()
    bias = head.bias if head.bias is not None else torch.zeros(head.out_features)
    return dict(features=torch.cat(features), logits=torch.cat(logits), weight=head.weight.detach().float().cpu(),
                bias=bias.detach().float().cpu())
