"""The registry's contract: lookup, config, errors, input kinds, external models."""

from __future__ import annotations

import importlib.util

import pytest
import torch
from torch import nn

import architectures
from architectures import Change, Family, InputKind, RegistryError, Relations

from helpers import TinyNet


def test_spec_describes_the_variant():
    arch = architectures.spec("resnet56")
    assert arch.family == "resnet"
    assert "1512.03385" in arch.paper
    assert arch.input_kind is InputKind.IMAGE
    assert arch.input_shape == (3, 32, 32)
    assert arch.defaults["depth"] == 56 and arch.defaults["num_classes"] == 10


def test_create_applies_overrides_and_keeps_defaults_untouched():
    model = architectures.create("densenet40_k12", growth_rate=6, num_classes=100)
    assert model.head[-1].out_features == 100
    assert architectures.spec("densenet40_k12").defaults["growth_rate"] == 12


def test_unknown_name_lists_the_closest_names():
    with pytest.raises(RegistryError, match=r"unknown architecture 'resnet5'.*resnet56"):
        architectures.create("resnet5")


def test_unknown_config_key_names_the_valid_keys():
    with pytest.raises(RegistryError, match=r"no config key 'widht'.*valid keys: .*width_mult"):
        architectures.create("mobilenet_v2", widht=2)


def test_duplicate_registration_is_an_error(scratch_registry):
    architectures.register("tiny", family=Family.OTHER, paper="none")(TinyNet)
    with pytest.raises(RegistryError, match="already registered"):
        architectures.register("tiny", family=Family.OTHER, paper="none")(TinyNet)


def test_registered_variant_is_built_with_its_defaults(scratch_registry):
    architectures.register("tiny8", family=Family.OTHER, paper="none", width=8)(TinyNet)
    assert "tiny8" in architectures.list_architectures()
    assert architectures.create("tiny8").conv.out_channels == 8
    assert architectures.create("tiny8", width=2).conv.out_channels == 2


def test_builder_must_take_num_classes_and_in_channels(scratch_registry):
    def no_classes(*, width: int = 4) -> nn.Module:
        return nn.Identity()

    with pytest.raises(RegistryError, match="num_classes"):
        architectures.register("broken", family=Family.OTHER, paper="none")(no_classes)


def test_variant_defaults_must_be_builder_arguments(scratch_registry):
    with pytest.raises(RegistryError, match="takes no argument depth"):
        architectures.register("broken", family=Family.OTHER, paper="none", depth=3)(TinyNet)


def test_token_inputs_need_a_length_and_a_vocabulary(scratch_registry):
    with pytest.raises(RegistryError, match=r"keyword arguments \['vocab_size'\]"):
        architectures.register(
            "broken", family=Family.OTHER, paper="none", input_kind=InputKind.IMAGE_TOKENS
        )(TinyNet)


def test_families_are_a_closed_set_in_presentation_order(scratch_registry):
    with pytest.raises(RegistryError, match="unknown family 'test'"):
        architectures.register("tiny", family="test", paper="none")(TinyNet)
    assert [family.value for family in Family][:3] == ["plain", "resnet", "densenet"]
    assert Family.parse("torchvision") is Family.OTHER  # older rows named the library


@pytest.mark.parametrize("name", architectures.list_architectures())
def test_declared_twins_exist_and_share_the_depth(name):
    relations = architectures.spec(name).relations
    if relations.twin is None:
        return
    twin = architectures.spec(relations.twin)
    assert twin.relations.depth == relations.depth
    if relations.change is Change.RESIDUAL:
        assert twin.family is Family.PLAIN
    assert twin.input_kind is architectures.spec(name).input_kind


def test_relations_name_what_changed_from_the_twin():
    assert architectures.spec("resnet56").relations == Relations(56, "plain56", Change.RESIDUAL)
    assert architectures.spec("resnet20_dw").relations.change is Change.SEPARABLE
    assert architectures.spec("fusion_xattn").relations.twin == "fusion_concat"
    with pytest.raises(RegistryError, match="a twin needs its change"):
        Relations(twin="resnet20")


def test_invalid_config_value_is_a_clear_error():
    with pytest.raises(ValueError, match="6n\\+2"):
        architectures.create("resnet20", depth=21)


def test_list_filters_by_wildcard_or_substring():
    assert architectures.list_architectures("plain*") == [
        "plain110", "plain18", "plain20", "plain32", "plain44", "plain56"
    ]  # fmt: skip
    assert architectures.list_architectures("_dw") == ["resnet20_dw", "resnet56_dw"]
    assert architectures.list_architectures("nothing-like-this") == []


def test_every_family_of_the_suite_is_registered():
    families = {architectures.spec(name).family for name in architectures.list_architectures()}
    assert {"plain", "resnet", "densenet", "grouped", "separable", "wide"} <= families


def test_image_tokens_input_kind_gives_image_and_token_ids(scratch_registry):
    class Fusion(nn.Module):
        def __init__(self, *, vocab_size: int = 20, num_classes: int = 10, in_channels: int = 3):
            super().__init__()
            self.embed = nn.Embedding(vocab_size, 8)
            self.conv = nn.Conv2d(in_channels, 8, 3)
            self.fc = nn.Linear(8, num_classes)

        def forward(self, image, tokens):
            return self.fc(self.conv(image).mean((2, 3)) + self.embed(tokens).mean(1))

    architectures.register(
        "fusion_toy",
        family="fusion",
        paper="none",
        input_kind=InputKind.IMAGE_TOKENS,
        input_shape=(3, 75, 75),
        token_length=11,
    )(Fusion)
    image, tokens = architectures.spec("fusion_toy").example_inputs(4)
    assert image.shape == (4, 3, 75, 75)
    assert tokens.shape == (4, 11) and tokens.dtype == torch.int64 and tokens.max() < 20
    assert architectures.create("fusion_toy")(image, tokens).shape == (4, 10)


def test_torchvision_models_by_name():
    arch = architectures.spec("torchvision:resnet18")
    assert arch.family is Family.OTHER and arch.input_shape == (3, 224, 224)
    model = architectures.create("torchvision:resnet18", num_classes=5, in_channels=1).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 1, 64, 64)).shape == (2, 5)
    assert "torchvision:mobilenet_v2" in architectures.list_architectures(
        "torchvision:mob*", external=True
    )
    assert not architectures.list_architectures("torchvision:*")  # only on request


def test_unknown_torchvision_model_lists_the_closest_names():
    expected = r"unknown torchvision model 'resnet19'.*resnet18.*\(see `archbench list --external"
    with pytest.raises(RegistryError, match=expected):
        architectures.spec("torchvision:resnet19")


@pytest.mark.skipif(importlib.util.find_spec("timm") is not None, reason="timm is installed")
def test_timm_models_need_timm():
    with pytest.raises(RegistryError, match="pip install timm"):
        architectures.spec("timm:resnet18")
