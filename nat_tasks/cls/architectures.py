"""The networks: classifiers that take [0, 1] images and normalise inside (RobustBench style).

``build_classifier(name, num_classes, in_channels=3, image_size=32, mean=None, std=None)`` wraps a
backbone as ``Classifier(normalize, net)``: attacks and budgets stay in pixel units and the
``state_dict`` keys are ``normalize.*`` and ``net.*`` for every architecture. Weights are always
randomly initialised (never downloaded). Small inputs (``image_size <= 64``, CIFAR/MNIST) get the
usual CIFAR stem on ImageNet architectures: a 3x3 stride-1 first conv and no max-pool.
"""
from torch import nn
from torchvision import models as tv

from nat_tasks.core.errors import NatError
from nat_tasks.core.pixel import Normalize

SMALL_INPUT = 64  # at or below this side length, ImageNet stems would shrink the image too early


class Classifier(nn.Module):
    """``net(normalize(x))`` for ``x`` in [0, 1]."""

    def __init__(self, net, mean, std):
        super().__init__()
        self.normalize = Normalize(mean, std)
        self.net = net

    def forward(self, x):
        return self.net(self.normalize(x))


# ---- pre-activation ResNets: PreActResNet-18 (Rice et al.) and WRN-34-10 (Madry, TRADES) --------

class PreActBlock(nn.Module):
    """BN-ReLU-conv3x3 twice; a 1x1 projection of the pre-activated input when the shape changes."""

    def __init__(self, in_planes, planes, stride):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.shortcut = (nn.Conv2d(in_planes, planes, 1, stride, bias=False)
                         if stride != 1 or in_planes != planes else None)

    def forward(self, x):
        out = self.bn1(x).relu()
        shortcut = x if self.shortcut is None else self.shortcut(out)
        out = self.conv1(out)
        out = self.conv2(self.bn2(out).relu())
        return out + shortcut


class PreActResNet(nn.Module):
    """3x3 stem, stages of ``PreActBlock`` (first block of a stage strided), BN-ReLU, pool, linear."""

    def __init__(self, num_classes, in_channels, stem_width, widths, blocks, strides):
        super().__init__()
        self.stem = nn.Conv2d(in_channels, stem_width, 3, 1, 1, bias=False)
        layers, in_planes = [], stem_width
        for width, n, stride in zip(widths, blocks, strides):
            for i in range(n):
                layers.append(PreActBlock(in_planes, width, stride if i == 0 else 1))
                in_planes = width
        self.layers = nn.Sequential(*layers)
        self.bn = nn.BatchNorm2d(in_planes)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(in_planes, num_classes)

    def forward(self, x):
        out = self.bn(self.layers(self.stem(x))).relu()
        return self.fc(self.pool(out).flatten(1))


def preact_resnet18(num_classes, in_channels, image_size):
    return PreActResNet(num_classes, in_channels, 64, (64, 128, 256, 512), (2, 2, 2, 2), (1, 2, 2, 2))


def wrn34_10(num_classes, in_channels, image_size, depth=34, widen=10):
    blocks = (depth - 4) // 6  # 5 blocks per stage for depth 34
    return PreActResNet(num_classes, in_channels, 16, (16 * widen, 32 * widen, 64 * widen),
                        (blocks,) * 3, (1, 2, 2))


# ---- small CNN for 28x28 digits: a few seconds per epoch on CPU ---------------------------------

def small_cnn(num_classes, in_channels, image_size):
    def conv_bn_relu(c_in, c_out):
        return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]

    side = image_size // 4
    return nn.Sequential(
        *conv_bn_relu(in_channels, 16), nn.MaxPool2d(2),
        *conv_bn_relu(16, 32), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * side * side, 128), nn.ReLU(inplace=True),
        nn.Linear(128, num_classes))


# ---- torchvision architectures, randomly initialised ---------------------------------------------

def _resnet(builder):
    def build(num_classes, in_channels, image_size):
        net = builder(weights=None, num_classes=num_classes)
        if image_size <= SMALL_INPUT:
            net.conv1 = nn.Conv2d(in_channels, 64, 3, 1, 1, bias=False)
            net.maxpool = nn.Identity()
        elif in_channels != 3:
            net.conv1 = nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False)
        return net
    return build


def mobilenet_v2(num_classes, in_channels, image_size):
    net = tv.mobilenet_v2(weights=None, num_classes=num_classes)
    stride = 1 if image_size <= SMALL_INPUT else 2
    stem = net.features[0][0]
    net.features[0][0] = nn.Conv2d(in_channels, stem.out_channels, 3, stride, 1, bias=False)
    return net


def densenet121(num_classes, in_channels, image_size):
    net = tv.densenet121(weights=None, num_classes=num_classes)
    width = net.features.conv0.out_channels
    if image_size <= SMALL_INPUT:
        net.features.conv0 = nn.Conv2d(in_channels, width, 3, 1, 1, bias=False)
        net.features.pool0 = nn.Identity()
    elif in_channels != 3:
        net.features.conv0 = nn.Conv2d(in_channels, width, 7, 2, 3, bias=False)
    return net


def vit_small(num_classes, in_channels, image_size, patch_size=16):
    if image_size % patch_size:
        raise NatError(f"vit_small needs an image size divisible by its patch size {patch_size}, got {image_size}")
    net = tv.VisionTransformer(image_size=image_size, patch_size=patch_size, num_layers=12, num_heads=6,
                               hidden_dim=384, mlp_dim=1536, num_classes=num_classes)
    if in_channels != 3:
        net.conv_proj = nn.Conv2d(in_channels, 384, patch_size, patch_size)
    return net


CLASSIFIERS = {
    "small_cnn": small_cnn,
    "preact_resnet18": preact_resnet18,
    "resnet18": _resnet(tv.resnet18),
    "wrn34_10": wrn34_10,
    "vit_small": vit_small,
    "mobilenet_v2": mobilenet_v2,
    "resnet50": _resnet(tv.resnet50),
    "densenet121": densenet121,
}


def build_classifier(name, num_classes, *, in_channels=3, image_size=32, mean=None, std=None):
    """A ``Classifier`` for [0, 1] images of ``in_channels`` x ``image_size`` x ``image_size``.

    ``mean``/``std``: the data set's per-channel constants (e.g. ``CIFAR10.mean``); ``None`` means
    no normalisation (mean 0, std 1).
    """
    if name not in CLASSIFIERS:
        raise NatError(f"unknown classifier {name!r}; expected one of {', '.join(CLASSIFIERS)}")
    net = CLASSIFIERS[name](num_classes, in_channels, image_size)
    mean = (0.0,) * in_channels if mean is None else mean
    std = (1.0,) * in_channels if std is None else std
    if len(mean) != in_channels or len(std) != in_channels:
        raise NatError(f"mean {tuple(mean)} and std {tuple(std)} need {in_channels} values (one per channel)")
    return Classifier(net, mean, std)


DATA_INFO_KEYS = ("num_classes", "in_channels", "image_size", "mean", "std")


def data_info(model_cfg):
    """``build_classifier``'s data constants as a config's ``model`` section states them."""
    return {key: model_cfg[key] for key in DATA_INFO_KEYS if key in model_cfg}
