"""SHIP (SyntHesIzed Prompts, ICCV 2023) on CLIP features, without any dassl import.

Modules, in the order of the method:
``clip_loader`` (frozen CLIP) → ``features`` (cached image features) →
``text_encoder`` (prompt injection, EOT cut) → ``generator`` (the VAE) →
``synthesis`` (features of label-only classes) → ``stages`` (fingerprinted checkpoints, the generator stage) →
``methods`` (the fine-tuners, one file each, and their registry; ``classifiers`` / ``training`` /
``tip_adapter`` are their parts) → ``heads`` (a trainer's method as a stage) → ``run_data`` (dataset, class
split, features) → ``metrics`` (and evaluation) → ``pipeline`` (the three protocols) → ``summary`` /
``plots`` (tables, figures) → ``__main__`` (CLI). ``dassl_classes`` / ``dassl_config`` are the Dassl-free
halves of the Dassl trainers; ``install_into`` installs SHIP into a CoOp checkout.
"""
