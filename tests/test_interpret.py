"""Prompt interpretation: nearest vocabulary tokens of learned vectors (CoOp's interpret_prompt.py)."""
import clip
import torch

from trainers.ship.__main__ import main as ship_main
from trainers.ship.reports.interpret import main, nearest_tokens, token_texts

from .helpers import write_image_folder


def test_a_vector_equal_to_a_token_embedding_decodes_to_that_token_first(tiny_clip):
    embedding = tiny_clip.model.token_embedding.weight.detach()
    ids = clip.tokenize(["dog", "sunflower"])[:, 1].tolist()  # the token after SOS
    vectors = embedding[ids] + 1e-4 * torch.randn(2, embedding.shape[1])
    distances, nearest = nearest_tokens(vectors, embedding, 3)
    assert nearest[:, 0].tolist() == ids and (distances[:, 0] < distances[:, 1]).all()
    assert token_texts(nearest[:, 0].tolist()) == ["dog", "sunflower"]


def test_interpret_a_finished_run(tmp_path, tiny_clip_path, capsys):
    folder = write_image_folder(tmp_path / "toy", ["cat", "dog", "car", "tree"], per_class=6)
    run = tmp_path / "run"
    assert ship_main([str(a) for a in ["--data-dir", folder, "--weights", tiny_clip_path, "--shots", 2, "--output-dir", run,
                                       "--cache-dir", tmp_path / "cache", "TRAINER.SHIP.GEN_EPOCHS", 2,
                                       "TRAINER.COOP.EPOCHS", 2, "TRAINER.SHIP.AUG_PASSES", 1,
                                       "DATALOADER.NUM_WORKERS", 0]]) == 0
    capsys.readouterr()
    assert main([str(run), "--topk", "2", "--samples", "2"]) == 0  # the run's CLIP, from setup.json
    table = (run / "interpretation.md").read_text()
    rows = [line for line in table.splitlines() if line.startswith("| ") and "(" in line]
    assert sum("global prompt" in r for r in rows) == 4 and sum("local bias" in r for r in rows) == 2
    assert sum("prompt learner context" in r for r in rows) == 4
    context = next(r for r in rows if r.startswith("| prompt learner context | 1 |"))
    assert context.split("| ")[3].startswith("a (")  # CoOp's context starts as "a photo of a": its first word stays nearest
    assert table in capsys.readouterr().out
    assert main([str(tmp_path / "toy")]) == 2  # nothing to interpret: one error line


def test_every_generator_variant_is_interpreted_or_named(tmp_path, tiny_clip_path, capsys):
    """The untrained control's generator is read like SHIP's (its rows say "untrained"); the feature variant, which
    holds no prompt vectors, is one note line; no variant is left out without a word."""
    from trainers.ship.model.generator import VARIANTS
    from trainers.ship.reports.interpret import PROMPT_PARTS
    assert set(PROMPT_PARTS) == set(VARIANTS)
    folder = write_image_folder(tmp_path / "toy", ["cat", "dog", "car", "tree"], per_class=6)
    for variant in ("untrained", "feature"):
        run = tmp_path / variant
        assert ship_main([str(a) for a in ["--data-dir", folder, "--weights", tiny_clip_path, "--shots", 2,
                                           "--output-dir", run, "--cache-dir", tmp_path / "cache",
                                           "--trainer", "SHIP_TipAdapter", "TRAINER.SHIP.GENERATOR", variant,
                                           "TRAINER.SHIP.GEN_EPOCHS", 2, "TRAINER.SHIP.AUG_PASSES", 1,
                                           "DATALOADER.NUM_WORKERS", 0]]) == 0
        capsys.readouterr()
        code = main([str(run), "--topk", "2", "--samples", "2"])
        out, err = capsys.readouterr()
        if variant == "untrained":
            assert code == 0
            rows = [line for line in out.splitlines() if line.startswith("| ") and "(" in line]
            assert sum("global prompt (untrained)" in r for r in rows) == 4
            assert sum("local bias r(z), z ~ N(0, I) (untrained)" in r for r in rows) == 2
        else:  # nothing else to read in a Tip-Adapter run: the note, then the error line
            assert "the feature generator maps z to a feature, not to prompt vectors" in err
            assert code == 2 and "holds no generator/ or prompt_learner/ checkpoint" in err
