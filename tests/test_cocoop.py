"""CoCoOp on features: the meta-net shifts the context per image; training (its schedule: tests/test_recipes.py)."""
import pytest
import torch

from trainers.ship.common.errors import ShipError
from trainers.ship.model.classifiers import ConditionalPromptLearner, PromptLearner
from trainers.ship.training.loops import train_prompt_learner

from .helpers import make_world

NAMES = ["cat", "dog", "car", "tree", "boat"]


def test_without_meta_net_shift_it_is_coop(text_encoder):
    """META_NET_INIT zero: CoCoOp starts where CoOp starts."""
    torch.manual_seed(0)
    cocoop, coop = ConditionalPromptLearner(text_encoder, meta_net_init="zero"), PromptLearner(text_encoder)
    features = torch.nn.functional.normalize(torch.randn(7, text_encoder.embed_dim), dim=-1)
    prompts = coop.class_prompts(NAMES)
    with torch.no_grad():
        assert torch.allclose(cocoop.logits(prompts, features), coop.logits(prompts, features), atol=1e-4)


def test_each_image_gets_its_own_text_features_and_chunks_change_nothing(text_encoder):
    torch.manual_seed(0)
    learner = ConditionalPromptLearner(text_encoder)
    torch.nn.init.normal_(learner.meta_net[2].weight, std=0.5)
    features = torch.nn.functional.normalize(torch.randn(6, text_encoder.embed_dim), dim=-1)
    prompts = learner.class_prompts(NAMES)
    with torch.no_grad():
        whole = learner.logits(prompts, features)
        one_by_one = torch.cat([learner.logits(prompts, f[None]) for f in features])
        learner.max_prompts = 2 * len(NAMES)  # two images at a time
        chunked = learner.logits(prompts, features)
        # image 0's logits under image 1's context differ from its own: the context depends on the image
        ctx = learner.ctx + learner.meta_net(features[1])
        embeddings, eot = prompts.assemble(ctx)
        text = torch.nn.functional.normalize(text_encoder(embeddings, eot).float(), dim=-1)
        swapped = text_encoder.logit_scale * features[0] @ text.t()
    assert whole.shape == (6, len(NAMES))
    assert torch.allclose(whole, one_by_one, atol=1e-4) and torch.allclose(whole, chunked, atol=1e-4)
    assert (swapped - whole[0]).abs().max() > 1e-3


def test_training_lowers_the_loss(text_encoder):
    world = make_world(text_encoder, 0, shots=4)
    torch.manual_seed(0)
    learner = ConditionalPromptLearner(text_encoder)
    history = train_prompt_learner(learner, learner.class_prompts(world.base_names), world.train, epochs=4, lr=2e-3,
                                   batch_size=4, momentum=0.9, weight_decay=5e-4, lr_scheduler="dassl", warmup_epochs=1)
    assert history[-1] < history[1]
    assert learner.meta_net[0].weight.grad is not None


def test_zero_meta_net_init_still_learns_an_image_dependent_shift(text_encoder):
    world = make_world(text_encoder, 0, shots=4)
    torch.manual_seed(0)
    learner = ConditionalPromptLearner(text_encoder, meta_net_init="zero")
    train_prompt_learner(learner, learner.class_prompts(world.base_names), world.train, epochs=3, lr=2e-3, batch_size=4,
                         momentum=0.9, lr_scheduler="dassl", warmup_epochs=1)
    with torch.no_grad():
        shifts = learner.meta_net(world.train.features[0, :8])
    assert (shifts - shifts[0]).abs().max() > 0  # the first layer got gradients once the last one left zero
    with pytest.raises(ShipError, match="META_NET_INIT"):
        ConditionalPromptLearner(text_encoder, meta_net_init="normal")
