import pytest
import torch
import torch.nn.functional as F

from trainers.ship.data.classes import class_ids
from trainers.ship.data.features import FeatureSet
from trainers.ship.model.classifiers import cosine_logits
from trainers.ship.training.tip_cache import TipCache, finetune_keys, search_alpha_beta, search_grid, tip_logits


def unit(*shape, seed=0):
    return F.normalize(torch.randn(*shape, generator=torch.Generator().manual_seed(seed)), dim=-1)


@pytest.fixture
def train():
    norms = torch.rand(3, 6, generator=torch.Generator().manual_seed(7)) + 0.5
    return FeatureSet(unit(3, 6, 8), torch.tensor([0, 0, 1, 1, 2, 2]), norms)


def test_cache_keys_values_and_synthetic_entries(train):
    synthetic = (unit(4, 8, seed=1), torch.tensor([3, 3, 4, 4]))
    adapter = TipCache.build(train, num_classes=5, synthetic=synthetic)
    assert adapter.keys.shape == (10, 8) and adapter.values.shape == (10, 5)
    raw_mean = (train.features * train.norms.unsqueeze(-1)).mean(0)
    assert torch.allclose(adapter.keys[:6], F.normalize(raw_mean, dim=-1))  # mean of raw passes, normalised
    assert torch.equal(adapter.keys[6:], synthetic[0])
    assert adapter.values.argmax(1).tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4] and adapter.values.sum().item() == 10
    plain = TipCache.build(train, num_classes=5)
    assert plain.values[:, 3:].sum() == 0  # no keys for the label-only classes


def test_alpha_zero_is_zero_shot_clip(train):
    adapter = TipCache.build(train, 3, alpha=0.0, beta=5.5)
    features, zero_shot = unit(7, 8, seed=2), unit(3, 8, seed=3)
    assert torch.equal(adapter.logits(features, zero_shot, 100.0), cosine_logits(features, zero_shot, 100.0))


def test_tip_logits_by_hand():
    f, w, keys = torch.tensor([[1.0, 0.0]]), torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([[0.0, 1.0]])
    values = torch.tensor([[0.0, 1.0]])
    logits = tip_logits(f, w, keys, values, alpha=2.0, beta=3.0, logit_scale=10.0)
    assert logits[0].tolist() == pytest.approx([10.0, 2.0 * torch.exp(torch.tensor(-3.0)).item()])


def test_search_grid_matches_tip_adapter():
    betas, alphas = search_grid((12, 5))
    assert len(betas) == 200 and len(alphas) == 20 and betas[0] == alphas[0] == pytest.approx(0.1)
    assert betas[1] == pytest.approx(0.1 + 11.9 / 200) and alphas[-1] == pytest.approx(0.1 + 19 * 4.9 / 20)


def test_search_uses_validation_only_and_picks_grid_values(train):
    adapter = TipCache.build(train, 3)
    zero_shot = unit(3, 8, seed=4)
    val = FeatureSet(unit(1, 9, 8, seed=5), torch.tensor([0, 1, 2] * 3))
    alpha, beta, acc = search_alpha_beta(val, zero_shot, adapter.keys, adapter.values, 100.0, (7.0, 3.0))
    betas, alphas = search_grid((7.0, 3.0))
    assert alpha in alphas and beta in betas and 0 <= acc <= 100
    # the search has no test input; an independent check that its choice is the best on val:
    for b in betas[::20]:
        for a in alphas[::5]:
            logits = tip_logits(val.features[0], zero_shot, adapter.keys, adapter.values, a, b, 100.0)
            assert 100.0 * (logits.argmax(-1) == val.labels).float().mean().item() <= acc + 1e-9


def test_finetuning_moves_keys_and_lowers_the_loss(train):
    torch.manual_seed(0)
    adapter = TipCache.build(train, 3, alpha=1.0, beta=1.0)
    zero_shot = unit(3, 8, seed=6)
    before = adapter.keys.clone()

    def loss():
        x = train.features.reshape(-1, 8)
        return F.cross_entropy(adapter.logits(x, zero_shot, 100.0), train.labels.repeat(3)).item()

    start = loss()
    finetune_keys(adapter, train, zero_shot, 100.0, epochs=30, lr=1e-2, batch_size=4)
    assert not torch.equal(before, adapter.keys) and loss() < start


def test_classes_without_cache_entries_score_as_zero_shot(train):
    """An evaluation on other classes (cross-dataset targets): columns follow class identities; a class the
    cache has no column for gets no votes."""
    adapter = TipCache.build(train, 3, alpha=2.0, beta=3.0)
    adapter.class_index = dict(zip(class_ids("Pets", range(3)), range(3)))
    columns = adapter.columns(["Pets#0", "Zoo#0", "Pets#2"])
    assert columns == [0, -1, 2]
    features = F.normalize(torch.randn(5, train.features.shape[-1]), dim=-1)
    zero_shot = F.normalize(torch.randn(3, train.features.shape[-1]), dim=-1)
    logits = adapter.logits(features, zero_shot, 100.0, columns)
    clip = cosine_logits(features, zero_shot, 100.0)
    assert torch.allclose(logits[:, 1], clip[:, 1])
    assert torch.allclose(logits[:, [0, 2]], adapter.logits(features, zero_shot[[0, 2]], 100.0, [0, 2]))
    assert (logits[:, 0] > clip[:, 0]).all()  # the others do get votes


def test_tip_adapter_f_follows_its_reference_loop(train):
    """Tip-Adapter-F as Tip-Adapter's main.py trains it, written out here: the keys as a linear layer's weight,
    AdamW(lr, eps=1e-4) with torch's default weight decay, torch's cosine over every iteration, cross-entropy of
    100 · f Wᵀ + α · exp(−β (1 − f Kᵀ)) V, on the same shuffled batches (one augmented pass per image and epoch)."""
    zero_shot, epochs, lr, batch_size, alpha, beta = unit(3, 8, seed=6), 4, 1e-2, 4, 1.5, 2.0
    cache = TipCache.build(train, 3, alpha=alpha, beta=beta)
    keys = torch.nn.Parameter(cache.keys.clone())
    optimizer = torch.optim.AdamW([keys], lr=lr, eps=1e-4)
    steps = -(-len(train) // batch_size)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, epochs * steps)
    torch.manual_seed(3)
    for _ in range(epochs):
        order, chosen = torch.randperm(len(train)), torch.randint(train.features.shape[0], (len(train),))
        for idx in order.split(batch_size):
            x, y = train.features[chosen[idx], idx], train.labels[idx]
            logits = 100.0 * x @ zero_shot.t() + alpha * torch.exp(-beta * (1 - x @ keys.t())) @ cache.values
            optimizer.zero_grad()
            F.cross_entropy(logits, y).backward()
            optimizer.step()
            scheduler.step()
    torch.manual_seed(3)
    finetune_keys(cache, train, zero_shot, 100.0, epochs=epochs, lr=lr, batch_size=batch_size)
    assert torch.allclose(cache.keys, keys.detach(), atol=1e-6)
    assert not torch.allclose(cache.keys, TipCache.build(train, 3).keys, atol=1e-3)  # the keys did move
