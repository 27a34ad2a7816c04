"""The model layer: frozen CLIP (``clip_loader``) and its text encoder cut after the last EOT (``text_encoder``), the
SHIP generator, the VAE of the paper (``generator``), the prompt learners of the fine-tuners (``classifiers``) and
the stream of synthetic features of label-only classes (``synthesis``). Tensors in, tensors out: no dataset, no file
of a run."""
