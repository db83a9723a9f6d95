"""`torchvision:<builder>`: any torchvision classification model (torchvision.models.list_models()).

Built with weights=None (never a download): the weights come from a checkpoint file or a
model manifest. The head is the last nn.Linear of `fc` (ResNets), `classifier` (VGG,
EfficientNet, ConvNeXt, ...) or `heads` (ViT). Default preprocessing is torchvision's usual
ImageNet evaluation (resize 256, centre crop 224, bilinear, ImageNet mean and std); weights
evaluated otherwise (ResNet-50 IMAGENET1K_V2: resize 232; Inception v3: 342 / 299) say so
in their manifest or in `model:`.
"""

from __future__ import annotations

from ...core.errors import UserError
from ..classifier import Classifier, last_linear
from ..preprocessing import Preprocessing
from .cifar_resnet import IMAGENET_MEAN, IMAGENET_STD
from .registry import register_family

HEADS = ("fc", "classifier", "heads")
IMAGENET_EVAL = Preprocessing(mean=list(IMAGENET_MEAN), std=list(IMAGENET_STD), input_size=224, resize=256)


def builder_names() -> list[str]:
    import torchvision.models as tvm

    return tvm.list_models(module=tvm)


def make(name: str):
    import torchvision.models as tvm

    fn = tvm.get_model_builder(name)

    def build(num_classes: int, in_channels: int) -> Classifier:
        if in_channels != 3:
            raise UserError(f"torchvision:{name} takes 3-channel images; the dataset has {in_channels}",
                            field="model.arch")
        net = fn(weights=None, num_classes=num_classes)
        return Classifier(net, head=last_linear(net, HEADS), preprocessing=IMAGENET_EVAL)

    build.__doc__ = f"torchvision.models.{name} (weights from a file or manifest, never downloaded)"
    build.__code_depends_on__ = (fn,)
    return build


register_family("torchvision", make, builder_names, "torchvision:<builder>",
                "any torchvision classification model, e.g. torchvision:resnet50 (torchvision.models.list_models())")
