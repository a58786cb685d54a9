"""The networks (architectures.py): every classifier maps [0, 1] images to logits and normalises inside."""
import pytest
import torch

from nat_tasks.cls.models.architectures import CLASSIFIERS, build_classifier, data_info
from nat_tasks.core.errors import NatError

LIGHT = ["small_cnn", "preact_resnet18", "resnet18", "mobilenet_v2", "vgg11"]
HEAVY = ["wrn34_10", "vit_small", "resnet50", "densenet121", "resnet34"]  # built once each, at 32x32


def logits_of(model, x):
    with torch.no_grad():
        return model.eval()(x)


def test_every_name_is_covered():
    assert set(CLASSIFIERS) == set(LIGHT + HEAVY)


# Published sizes (10 classes, CIFAR stems): PreActResNet-18 / ResNet-18 11.17M, WRN-34-10 46.16M.
PUBLISHED_MILLIONS = {"preact_resnet18": 11.17, "resnet18": 11.17, "wrn34_10": 46.16}
# Exact sizes of the CIFAR versions the AT code bases train (kuangliu/pytorch-cifar's models, which
# TRADES, RSLAD, ARD, IAD and Nasty Teacher use), 10 classes.
CIFAR_VERSION_PARAMETERS = {"resnet18": 11_173_962, "resnet34": 21_282_122, "resnet50": 23_520_842,
                            "densenet121": 6_956_298, "mobilenet_v2": 2_296_922, "vgg11": 9_231_114}


@pytest.mark.parametrize("name", LIGHT + HEAVY)
def test_maps_images_to_class_logits(name):
    torch.manual_seed(0)
    model = build_classifier(name, 10, image_size=32)
    batch = 1 if name in HEAVY else 2
    out = logits_of(model, torch.rand(batch, 3, 32, 32))
    assert out.shape == (batch, 10) and torch.isfinite(out).all()
    assert all(k.startswith(("normalize.", "net.")) for k in model.state_dict())
    if name in PUBLISHED_MILLIONS:
        millions = sum(p.numel() for p in model.net.parameters()) / 1e6
        assert millions == pytest.approx(PUBLISHED_MILLIONS[name], abs=0.01)
    if name in CIFAR_VERSION_PARAMETERS:
        assert sum(p.numel() for p in model.net.parameters()) == CIFAR_VERSION_PARAMETERS[name]


@pytest.mark.parametrize("name", LIGHT)
def test_grey_scale_inputs(name):
    model = build_classifier(name, 10, in_channels=1, image_size=28 if name == "small_cnn" else 32,
                             mean=(0.1307,), std=(0.3081,))
    size = 28 if name == "small_cnn" else 32
    assert logits_of(model, torch.rand(3, 1, size, size)).shape == (3, 10)


def test_normalisation_is_the_first_layer():
    torch.manual_seed(0)
    mean, std = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
    model = build_classifier("small_cnn", 10, mean=mean, std=std).eval()
    x = torch.rand(2, 3, 32, 32)
    by_hand = (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    with torch.no_grad():
        assert torch.allclose(model(x), model.net(by_hand), atol=1e-5)
    other = build_classifier("small_cnn", 10, mean=(0.5,) * 3, std=(0.25,) * 3).eval()
    other.net.load_state_dict(model.net.state_dict())
    assert not torch.allclose(logits_of(model, x), logits_of(other, x))
    plain = build_classifier("small_cnn", 10).eval()  # no mean/std: identity
    plain.net.load_state_dict(model.net.state_dict())
    assert torch.allclose(logits_of(plain, x), logits_of(model.net, x))


def test_small_inputs_get_a_cifar_stem_and_large_ones_keep_imagenet_stems():
    small = build_classifier("resnet18", 10, image_size=32).net
    assert small.conv1.kernel_size == (3, 3) and small.conv1.stride == (1, 1)
    assert isinstance(small.maxpool, torch.nn.Identity)
    large = build_classifier("resnet18", 10, image_size=224).net
    assert large.conv1.stride == (2, 2) and isinstance(large.maxpool, torch.nn.MaxPool2d)
    assert build_classifier("mobilenet_v2", 10, image_size=96).net.features[0][0].stride == (2, 2)
    large = build_classifier("resnet34", 100, image_size=224).net  # ImageNet-100's ResNet-34
    assert large.conv1.stride == (2, 2) and large.fc.out_features == 100


def feature_map_sides(net, x, layer_type):
    sides = []
    hooks = [m.register_forward_hook(lambda m, i, o: sides.append(o.shape[-1]))
             for m in net.modules() if isinstance(m, layer_type)]
    with torch.no_grad():
        net.eval()(x)
    for hook in hooks:
        hook.remove()
    return sides


def test_cifar_versions_downsample_as_the_cifar_code_bases_do():
    x = torch.rand(1, 3, 32, 32)
    # MobileNetV2: stem and 24-channel stage at stride 1, so 32 px end at 4x4 (torchvision: 2x2)
    mobilenet = build_classifier("mobilenet_v2", 10).net
    assert feature_map_sides(mobilenet, x, torch.nn.BatchNorm2d)[-1] == 4
    assert mobilenet.features[0].stride == (1, 1)
    # VGG-11: five max-pools, 32 -> 1
    assert feature_map_sides(build_classifier("vgg11", 10).net, x, torch.nn.MaxPool2d) == [16, 8, 4, 2, 1]
    # DenseNet-121: the 3x3 stem conv feeds the first dense block, which starts with BN-ReLU; the
    # three transitions halve 32 -> 4
    densenet = build_classifier("densenet121", 10).net.features
    assert isinstance(densenet.norm0, torch.nn.Identity) and isinstance(densenet.pool0, torch.nn.Identity)
    assert feature_map_sides(densenet, x, torch.nn.AvgPool2d) == [16, 8, 4]


def test_bad_requests_are_user_errors():
    with pytest.raises(NatError, match="unknown classifier 'resnet19'.*small_cnn.*densenet121"):
        build_classifier("resnet19", 10)
    with pytest.raises(NatError, match="divisible by its patch size"):
        build_classifier("vit_small", 10, image_size=28)
    with pytest.raises(NatError, match="one per channel"):
        build_classifier("small_cnn", 10, in_channels=1, image_size=28, mean=(0.5, 0.5, 0.5), std=(1, 1, 1))


def test_data_info_is_what_a_config_model_section_says_about_the_data():
    model_cfg = dict(type="AdversarialClassifier", arch="small_cnn", num_classes=10, in_channels=1, image_size=28,
                     mean=(0.1307,), std=(0.3081,), method=dict(type="vanilla"))
    assert data_info(model_cfg) == dict(num_classes=10, in_channels=1, image_size=28, mean=(0.1307,), std=(0.3081,))
    assert build_classifier("small_cnn", **data_info(model_cfg)).normalize.mean.shape[1] == 1
