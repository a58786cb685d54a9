"""torchreid models on [0, 1] images, their ID logits, and our / torchreid's checkpoints of them."""
import os

from torch import nn

from nat_tasks.core.checkpoint import load_state_dict, safe_load, state_dict_of
from nat_tasks.core.errors import NatError
from nat_tasks.core.pixel import Normalize

# torchreid's default normalisation (ImageNet): what ImageNet-pretrained backbones expect.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ReidNet(nn.Module):
    """A torchreid model that takes [0, 1] images and normalises inside, so attacks and budgets
    live in pixel space. ``forward`` keeps torchreid's contract (training with the triplet loss:
    ``(logits, features)``; eval: ``features``) so torchreid's engines and tools work unchanged.
    """

    def __init__(self, backbone, mean=IMAGENET_MEAN, std=IMAGENET_STD):
        super().__init__()
        self.normalize = Normalize(mean, std)
        self.backbone = backbone
        if not isinstance(getattr(backbone, "classifier", None), nn.Linear):
            raise NatError(f"{type(backbone).__name__} has no linear ID classifier on its embedding; "
                           "NAT and AMD need models like resnet*/osnet*/mobilenetv2*")

    def forward(self, x):
        return self.backbone(self.normalize(x))

    def embed(self, x):
        """The embedding used for retrieval, in the current train/eval mode."""
        out = self(x)
        return out[1] if isinstance(out, tuple) else out

    def id_logits(self, x):
        """ID logits in any mode (torchreid models return only features in eval mode)."""
        return self.backbone.classifier(self.embed(x))

    @property
    def num_classes(self):
        return self.backbone.classifier.out_features


class IdLogits(nn.Module):
    """``x -> id_logits`` of a ``ReidNet``: what the frozen adversary of NAT answers with."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net.id_logits(x)


def build_reid_model(name, num_classes, pretrained=None):
    """A torchreid model ``name`` for ``num_classes`` identities, never downloading weights.

    ``pretrained``: a local ImageNet checkpoint (torchvision/torchreid keys); layers that do not
    fit (the ImageNet classifier) are skipped, as torchreid's ``load_pretrained_weights`` does. Not
    that function itself: its loader retries an unreadable file with ``weights_only=False``.
    """
    from torchreid.reid import models

    try:
        backbone = models.build_model(name, num_classes, loss="triplet", pretrained=False,
                                      use_gpu=False)
    except KeyError as err:
        raise NatError(str(err).strip("'\"")) from None
    if pretrained:
        if not os.path.isfile(pretrained):
            raise NatError(f"pretrained weights not found: {pretrained} (give a local ImageNet "
                           "checkpoint of the same architecture; nothing is downloaded)")
        own = backbone.state_dict()
        fitting = {k: v for k, v in load_state_dict(pretrained).items()
                   if k in own and v.shape == own[k].shape}
        if not fitting:
            raise NatError(f"no layer of {pretrained} fits torchreid's {name}")
        backbone.load_state_dict(fitting, strict=False)
    return ReidNet(backbone)


def read_checkpoint(path):
    """``(state_dict, meta)`` of one of our checkpoints, or of a torchreid one (``meta == {}``).

    Our ``meta`` records the torchreid model name, the number of identities and the method.
    """
    obj = safe_load(path)  # weights-only; one clear line for a missing, unreadable or unsafe file
    return state_dict_of(obj, path), dict(obj.get("meta") or {})


def num_identities(state, path):
    classifier = state.get("backbone.classifier.weight", state.get("classifier.weight"))
    if classifier is None:
        raise NatError(f"{path} has no ID classifier weights (classifier.weight)")
    return classifier.shape[0]


def load_reid_weights(net, state, path, what="checkpoint"):
    """Load ours (``normalize.* / backbone.*``) or a torchreid state (backbone keys) strictly."""
    if not any(k.startswith("backbone.") for k in state):
        state = {f"backbone.{k}": v for k, v in state.items()}
        state.update({f"normalize.{k}": v for k, v in net.normalize.state_dict().items()})
    if num_identities(state, path) != net.num_classes:
        raise NatError(f"{what} {path} has {num_identities(state, path)} identities, the training "
                       f"set has {net.num_classes}")
    mismatched = sorted(k for k, v in net.state_dict().items()
                        if k not in state or state[k].shape != v.shape)
    unexpected = sorted(set(state) - set(net.state_dict()))
    if mismatched or unexpected:
        example = (mismatched or unexpected)[0]
        raise NatError(f"{what} {path} does not fit torchreid's "
                       f"{type(net.backbone).__name__}: {len(mismatched)} missing/mismatched and "
                       f"{len(unexpected)} unexpected weights (e.g. {example}); wrong --model?")
    net.load_state_dict(state)
    return net


def load_checkpoint_model(path, default_model, num_classes=None, what="checkpoint"):
    """The ``ReidNet`` stored in ``path`` and its meta; torchreid checkpoints use ``default_model``.

    ``num_classes``: the identities the model must have (NAT's adversary); default: the file's.
    """
    state, meta = read_checkpoint(path)
    name = meta.get("model", default_model)
    net = build_reid_model(name, num_classes or num_identities(state, path))
    return load_reid_weights(net, state, path, what), meta

