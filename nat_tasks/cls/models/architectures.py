"""The networks: classifiers that take [0, 1] images and normalise inside (RobustBench style).

``build_classifier(name, num_classes, in_channels=3, image_size=32, mean=None, std=None)`` wraps a
backbone as ``Classifier(normalize, net)``: attacks and budgets stay in pixel units and the
``state_dict`` keys are ``normalize.*`` and ``net.*`` for every architecture. Weights are always
randomly initialised (never downloaded). Small inputs (``image_size <= 64``, CIFAR/MNIST) get the
CIFAR versions of kuangliu/pytorch-cifar, the definitions adversarial-robustness code bases copy
(RSLAD's MobileNetV2, whose numbers Table 5 quotes, is that one), layer for layer and parameter for
parameter:

- ResNet-18/34/50: torchvision's with a 3x3 stride-1 first conv and no max-pool (11,173,962 /
  21,282,122 / 23,520,842 parameters for 10 classes, as the CIFAR versions);
- DenseNet-121: growth 32, a 3x3 stride-1 first conv straight into the first dense block (no
  BN-ReLU, no pool after it: torchvision's ``norm0``/``relu0``/``pool0`` are removed), 6,956,298;
- MobileNetV2: ours (``CifarMobileNetV2``): stride 1 in the stem and in the 24-channel stage, a
  1x1 conv + BN shortcut on stride-1 blocks whose width changes, ReLU, 2,296,922; torchvision's
  strides leave a 2x2 map at 32 px, this one 4x4;
- VGG-11: conv3x3 (with bias) + BN + ReLU, five max-pools, one linear layer on 512 features,
  9,231,114 (global average pooling first, so larger inputs work too).

Large inputs keep the ImageNet stems (torchvision's networks; VGG-11 stays the CIFAR one).
``robustbench:<dataset>/<threat_model>/<name>`` names a RobustBench model-zoo definition
(``robustbench_models.py``).
"""
from torch import nn
from torchvision import models as tv

from nat_tasks.core.errors import NatError, check_number
from nat_tasks.cls.models.classifier import ZOO_PREFIX, Classifier

SMALL_INPUT = 64  # at or below this side length, ImageNet stems would shrink the image too early


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


def densenet121(num_classes, in_channels, image_size):
    net = tv.densenet121(weights=None, num_classes=num_classes)
    width = net.features.conv0.out_channels
    if image_size <= SMALL_INPUT:
        net.features.conv0 = nn.Conv2d(in_channels, width, 3, 1, 1, bias=False)
        # the CIFAR DenseNet's stem conv feeds the first dense block directly (which starts with BN-ReLU)
        net.features.norm0 = net.features.relu0 = net.features.pool0 = nn.Identity()
    elif in_channels != 3:
        net.features.conv0 = nn.Conv2d(in_channels, width, 7, 2, 3, bias=False)
    return net


# ---- MobileNetV2 and VGG-11 as CIFAR code bases define them -------------------------------------

class InvertedResidual(nn.Module):
    """1x1 expand, 3x3 depthwise (strided), 1x1 project (linear); a shortcut on stride-1 blocks,
    through a 1x1 conv + BN when the width changes (the CIFAR version's choice)."""

    def __init__(self, in_planes, out_planes, expansion, stride):
        super().__init__()
        planes = expansion * in_planes

        def conv_bn(c_in, c_out, kernel, stride=1, groups=1):
            return [nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, groups=groups, bias=False),
                    nn.BatchNorm2d(c_out)]

        self.body = nn.Sequential(*conv_bn(in_planes, planes, 1), nn.ReLU(inplace=True),
                                  *conv_bn(planes, planes, 3, stride, groups=planes), nn.ReLU(inplace=True),
                                  *conv_bn(planes, out_planes, 1))
        self.shortcut = None
        if stride == 1:
            self.shortcut = nn.Identity() if in_planes == out_planes else nn.Sequential(*conv_bn(in_planes, out_planes, 1))

    def forward(self, x):
        out = self.body(x)
        return out if self.shortcut is None else out + self.shortcut(x)


class CifarMobileNetV2(nn.Module):
    # (expansion, width, blocks, stride of the first block); the 24-channel stage keeps the
    # resolution (ImageNet: stride 2), as does the stem, so 32 px end at 4x4
    STAGES = ((1, 16, 1, 1), (6, 24, 2, 1), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
              (6, 320, 1, 1))

    def __init__(self, num_classes, in_channels):
        super().__init__()
        layers, in_planes = [nn.Conv2d(in_channels, 32, 3, 1, 1, bias=False), nn.BatchNorm2d(32),
                             nn.ReLU(inplace=True)], 32
        for expansion, width, blocks, stride in self.STAGES:
            for i in range(blocks):
                layers.append(InvertedResidual(in_planes, width, expansion, stride if i == 0 else 1))
                in_planes = width
        layers += [nn.Conv2d(in_planes, 1280, 1, bias=False), nn.BatchNorm2d(1280), nn.ReLU(inplace=True),
                   nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(1280, num_classes)

    def forward(self, x):
        return self.fc(self.features(x))


def mobilenet_v2(num_classes, in_channels, image_size):
    if image_size <= SMALL_INPUT:
        return CifarMobileNetV2(num_classes, in_channels)
    net = tv.mobilenet_v2(weights=None, num_classes=num_classes)
    if in_channels != 3:
        stem = net.features[0][0]
        net.features[0][0] = nn.Conv2d(in_channels, stem.out_channels, 3, 2, 1, bias=False)
    return net


VGG11 = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M")


def vgg11(num_classes, in_channels, image_size):
    """VGG-11 with BN, CIFAR version: conv3x3 (bias) + BN + ReLU, max-pools, one linear layer."""
    layers, c_in = [], in_channels
    for c_out in VGG11:
        if c_out == "M":
            layers.append(nn.MaxPool2d(2))
        else:
            layers += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
            c_in = c_out
    # 1x1 after five pools at 32 px (where this pool is the identity); any larger input works too
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c_in, num_classes))


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
    "resnet34": _resnet(tv.resnet34),
    "vgg11": vgg11,
}


def build_classifier(name, num_classes, *, in_channels=3, image_size=32, mean=None, std=None):
    """A ``Classifier`` for [0, 1] images of ``in_channels`` x ``image_size`` x ``image_size``.

    ``mean``/``std``: the data set's per-channel constants (e.g. ``CIFAR10.mean``); ``None`` means
    no normalisation (mean 0, std 1). A RobustBench name ignores them: such models normalise inside.
    """
    if not isinstance(name, str):
        raise NatError(f"model.arch must be a classifier name, got {name!r}")
    num_classes = check_number(num_classes, "model.num_classes", integer=True, low=2)
    if name.startswith(ZOO_PREFIX):
        from nat_tasks.cls.models.robustbench_models import build_zoo_classifier  # deferred: imports robustbench and timm
        return build_zoo_classifier(name[len(ZOO_PREFIX):], num_classes, in_channels, image_size)
    if name not in CLASSIFIERS:
        raise NatError(f"unknown classifier {name!r}; expected one of {', '.join(CLASSIFIERS)} "
                       f"or {ZOO_PREFIX}<dataset>/<threat_model>/<name>")
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
