import math

import pytest
import torch

from trainers.ship.common.errors import ShipError
from trainers.ship.model.generator import VARIANTS, ShipGenerator, vae_loss
from trainers.ship.model.synthesis import SyntheticStream, synthesize_per_class
from trainers.ship.training.loops import train_generator

from .helpers import make_world


@pytest.fixture(scope="module")
def world(text_encoder):
    return make_world(text_encoder, seed=0)


def test_sizes_follow_the_backbone(text_encoder):
    torch.manual_seed(0)
    g = ShipGenerator(text_encoder)  # tiny CLIP: features 32-d, text width 64
    assert g.encoder.body[0].in_features == 32 and g.encoder.body[0].out_features == 2048
    assert g.encoder.mu.out_features == g.encoder.logvar.out_features == 32
    assert g.bias_mlp[0].out_features == 4096 and g.bias_mlp[-1].out_features == 64
    assert g.global_prompts.shape == (4, 64)
    assert abs(g.encoder.mu.weight.std().item() - 0.02) < 0.002 and g.encoder.mu.bias.abs().sum() == 0
    assert abs(g.global_prompts.std().item() - 0.02) < 0.005
    assert ShipGenerator(text_encoder, latent_dim=16, leaky_relu=True).bias_mlp[1].negative_slope == 0.2


def test_checkpoint_holds_no_clip_weights(text_encoder):
    keys = ShipGenerator(text_encoder).state_dict().keys()
    assert {k.split(".")[0] for k in keys} == {"encoder", "bias_mlp", "global_prompts"}


def test_vae_loss_by_hand():
    x = torch.tensor([[1.0, 0.0]])
    x_hat = torch.tensor([[0.0, 1.0]])
    mu, logvar = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, math.log(2.0)]])
    rec, kl = vae_loss(x_hat, x, mu, logvar)
    assert rec.item() == pytest.approx(2.0)
    assert kl.item() == pytest.approx(-0.5 * ((1 + 0 - 1 - 1) + (1 + math.log(2.0) - 0 - 2)))


def test_gradients_reach_encoder_mlp_prompts_never_clip(text_encoder, tiny_clip, world):
    torch.manual_seed(0)
    g = ShipGenerator(text_encoder)
    rec, kl = g(world.train.features[0, :8], g.class_prompts(world.base_names), world.train.labels[:8])
    (rec + kl).backward()
    for name, p in g.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert all(p.grad is None and not p.requires_grad for p in tiny_clip.model.parameters())


def test_training_lowers_the_loss_and_kl_stays_finite(text_encoder, world):
    torch.manual_seed(0)
    g = ShipGenerator(text_encoder)
    history = train_generator(g, g.class_prompts(world.base_names), world.train, epochs=30, batch_size=32)
    assert all(math.isfinite(h["kl"]) and h["kl"] >= 0 for h in history)
    assert history[-1]["loss"] < 0.6 * history[0]["loss"]
    assert history[-1]["rec"] < history[0]["rec"]


def test_nan_loss_stops_with_stage_and_epoch(text_encoder, world):
    g = ShipGenerator(text_encoder)
    with torch.no_grad():
        g.global_prompts.fill_(float("nan"))
    with pytest.raises(ShipError, match="generator loss became nan at epoch 1"):
        train_generator(g, g.class_prompts(world.base_names), world.train, epochs=2)


def test_synthesize_per_class(text_encoder, world):
    torch.manual_seed(0)
    g = ShipGenerator(text_encoder).eval()
    features, labels = synthesize_per_class(g, g.class_prompts(world.new_names), n_per_class=5, batch_size=7)
    assert features.shape == (5 * len(world.new_names), 32)
    assert labels.tolist() == [c for c in range(len(world.new_names)) for _ in range(5)]
    assert torch.allclose(features.norm(dim=-1), torch.ones(len(labels)), atol=1e-5)
    assert not torch.allclose(features[0], features[1])  # z is sampled, not a constant


@pytest.mark.parametrize("pool", [0, 3])
def test_stream_labels_follow_base_labels(text_encoder, world, pool):
    torch.manual_seed(0)
    g = ShipGenerator(text_encoder).eval()
    stream = SyntheticStream(g, g.class_prompts(world.new_names), label_offset=6, pool_per_class=pool)
    features, labels = stream.sample(200)
    assert features.shape == (200, 32)
    assert set(labels.tolist()) == set(range(6, 6 + len(world.new_names)))  # uniform draw hits every class


@pytest.mark.parametrize("variant", VARIANTS)
def test_generator_variants_shapes_loss_and_synthesis(text_encoder, variant):
    world = make_world(text_encoder, 0, shots=4)
    torch.manual_seed(0)
    generator = ShipGenerator(text_encoder, encoder_hidden=64, mlp_hidden=64, variant=variant)
    assert hasattr(generator, "feature_decoder") == (variant == "feature") and hasattr(generator, "bias_mlp") == (variant != "feature")
    assert generator.encoder.body[0].in_features == text_encoder.embed_dim * (2 if variant == "cvae" else 1)
    history = train_generator(generator, generator.class_prompts(world.base_names), world.train, epochs=15, lr=1e-3)
    assert history[-1]["rec"] < history[0]["rec"]
    features, labels = synthesize_per_class(generator, generator.class_prompts(world.new_names), 5)
    assert features.shape == (5 * len(world.new_names), text_encoder.embed_dim)
    assert torch.allclose(features.norm(dim=-1), torch.ones(len(features)), atol=1e-4)
    within = features.view(len(world.new_names), 5, -1)
    assert (within.std(1).max() < 1e-5) == (variant == "global_only")  # global_only ignores z


def test_unknown_generator_variant_is_one_line(text_encoder):
    with pytest.raises(ShipError, match="unknown TRAINER.SHIP.GENERATOR 'gan'; expected one of prompt, feature"):
        ShipGenerator(text_encoder, variant="gan")
