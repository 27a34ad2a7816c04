import torch

from trainers.ship.model.text_encoder import ClassPrompts, tokenize


def full_length_features(model, embeddings, eot):
    """The reference: all 77 positions through the transformer, no cut."""
    x = embeddings + model.positional_embedding
    x = model.transformer(x.permute(1, 0, 2)).permute(1, 0, 2)
    x = model.ln_final(x)
    return x[torch.arange(len(eot)), eot] @ model.text_projection


def test_eot_cut_equals_full_sequence(text_encoder, tiny_clip):
    ids = tokenize(["a photo of a dog.", "cat", "a very long description of a large aircraft carrier at sea"])
    embeddings, eot = text_encoder.embed_tokens(ids), ids.argmax(-1)
    cut = text_encoder(embeddings, eot)
    assert torch.allclose(cut, full_length_features(tiny_clip.model, embeddings, eot), atol=1e-5)
    assert torch.allclose(cut, tiny_clip.model.encode_text(ids), atol=1e-5)


def test_injected_context_matches_full_sequence(text_encoder, tiny_clip):
    prompts = ClassPrompts(text_encoder, ["dog", "sea_lion", "joshua tree"], n_ctx=4)
    assert prompts.classnames[1] == "sea lion"
    ctx = torch.randn(3, 4, text_encoder.width) * 0.05
    embeddings, eot = prompts.assemble(ctx)
    assert embeddings.shape[1] == int(eot.max()) + 1 < 77  # stored already cut
    padded = torch.cat([embeddings, torch.zeros(3, 77 - embeddings.shape[1], text_encoder.width)], dim=1)
    assert torch.allclose(text_encoder(embeddings, eot), full_length_features(tiny_clip.model, padded, eot), atol=1e-5)


def test_assemble_shared_and_per_sample_context(text_encoder):
    prompts = ClassPrompts(text_encoder, ["dog", "cat"], n_ctx=2)
    ctx = torch.randn(2, text_encoder.width)
    shared, eot = prompts.assemble(ctx)
    per_sample, eot_b = prompts.assemble(ctx.expand(3, -1, -1), torch.tensor([1, 0, 1]))
    assert torch.equal(per_sample[0], shared[1]) and torch.equal(per_sample[1], shared[0])
    assert torch.equal(shared[0, 1:3], ctx) and eot_b.tolist() == [eot[1], eot[0], eot[1]]


def test_gradient_reaches_context_not_clip(text_encoder, tiny_clip):
    prompts = ClassPrompts(text_encoder, ["dog", "cat"], n_ctx=4)
    ctx = torch.zeros(4, text_encoder.width, requires_grad=True)
    text_encoder(*prompts.assemble(ctx)).sum().backward()
    assert ctx.grad is not None and ctx.grad.abs().sum() > 0
    assert all(p.grad is None for p in tiny_clip.model.parameters())


def test_too_long_class_name_is_cut_with_one_log_line(text_encoder, ship_log):
    long_name = "word " * 100
    for _ in range(2):
        prompts = ClassPrompts(text_encoder, ["dog", long_name], n_ctx=4)
    ids = tokenize(["X X X X dog.", f"X X X X {long_name}."])
    assert ids[1, -1] == ids[0].max()  # cut to 76 tokens, then EOT: the EOT feature still exists
    assert prompts.eot.tolist() == [int(ids[0].argmax()), 76]
    cut = [m for m in ship_log if "longer than CLIP's 77-token context" in m]
    assert len(cut) == 1 and "word word" in cut[0]
