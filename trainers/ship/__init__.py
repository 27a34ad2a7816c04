"""SHIP (SyntHesIzed Prompts, ICCV 2023) on CLIP features, without any dassl import.

Modules, in the order of the method:
``clip_loader`` (frozen CLIP) → ``features`` (cached image features) →
``text_encoder`` (prompt injection, EOT cut) → ``generator`` (the VAE) →
``synthesis`` (features of label-only classes) → ``classifiers`` / ``training``
(CoOp / CoCoOp heads), ``tip_adapter`` → ``metrics`` → ``pipeline`` (the three protocols) →
``summary`` / ``plots`` (tables, figures) → ``__main__`` (CLI).
"""
