"""The SHIP generator: a VAE whose decoder is CLIP's frozen text encoder.

    x ──E──▶ (μ, log σ²) ──z = μ + σ·ε──▶ G ──▶ r(z)                      (local bias)
    prompt_c(z) = [SOS] [p_1 + r(z)] … [p_M + r(z)] [tokens of "c ."] [EOT]
    x̂ = normalise(TextEncoder(prompt_c(z)))                                (reconstruction)
    L = E_batch[ ‖x̂ − x‖² ] + λ_KL · E_batch[ KL(N(μ, σ²) ‖ N(0, I)) ]

p_1..p_M are learnable global prompt vectors; the text encoder is frozen.
Synthesis for a label-only class c draws z ~ N(0, I) and decodes prompt_c(z).
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from trainers.ship.common.errors import ShipError
from trainers.ship.model.text_encoder import ClassPrompts, TextEncoder

# TRAINER.SHIP.GENERATOR: SHIP's prompt generator, the paper's alternatives (see ShipGenerator.decode) and a
# control the paper lacks: "untrained", SHIP's prompt generator with its initial weights (never trained)
VARIANTS = ("prompt", "feature", "global_only", "local_only", "cvae", "untrained")


def _init_normal(module: nn.Module) -> None:
    """Weights N(0, 0.02), biases 0 (the reference code's init)."""
    if isinstance(module, nn.Linear):
        nn.init.normal_(module.weight, 0.0, 0.02)
        nn.init.zeros_(module.bias)


class FeatureEncoder(nn.Module):
    """E: image feature x ↦ (μ, log σ²) of q(z | x). The class is not an input."""

    def __init__(self, feat_dim: int, hidden: int, latent_dim: int):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(feat_dim, hidden), nn.ReLU())
        self.mu = nn.Linear(hidden, latent_dim)
        self.logvar = nn.Linear(hidden, latent_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.body(x)
        return self.mu(h), self.logvar(h)


class LocalBiasMLP(nn.Sequential):
    """G: latent z ↦ local bias r(z), one vector of the text width added to every global prompt."""

    def __init__(self, latent_dim: int, hidden: int, width: int, leaky: bool = False):
        act = nn.LeakyReLU(0.2) if leaky else nn.ReLU()
        super().__init__(nn.Linear(latent_dim, hidden), act, nn.Linear(hidden, width))


def vae_loss(x_hat: torch.Tensor, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(reconstruction, KL), each a mean over the batch of a sum over dimensions."""
    rec = (x_hat - x).pow(2).sum(-1).mean()
    kl = (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(-1)).mean()
    return rec, kl


class ShipGenerator(nn.Module):
    """Encoder E, bias MLP G and M global prompt vectors; decodes through a frozen CLIP text encoder.

    Sizes follow the backbone: features of ``text_encoder.embed_dim``, prompt
    vectors of ``text_encoder.width``; ``latent_dim`` defaults to the feature size.
    """

    def __init__(
        self,
        text_encoder: TextEncoder,
        n_ctx: int = 4,
        encoder_hidden: int = 2048,
        mlp_hidden: int = 4096,
        latent_dim: int | None = None,
        leaky_relu: bool = False,
        variant: str = "prompt",
    ):
        super().__init__()
        if variant not in VARIANTS:
            raise ShipError(f"unknown TRAINER.SHIP.GENERATOR {variant!r}; expected one of {', '.join(VARIANTS)}")
        self.text_encoder = text_encoder  # frozen, and not a submodule (see TextEncoder)
        self.variant = variant
        feat_dim, width = text_encoder.embed_dim, text_encoder.width
        self.n_ctx = n_ctx
        self.latent_dim = latent_dim or feat_dim
        conditional = variant == "cvae"  # the encoder also sees the class's text feature
        self.encoder = FeatureEncoder(feat_dim * (2 if conditional else 1), encoder_hidden, self.latent_dim)
        if variant == "feature":  # (z, the class's text feature) -> the image feature, no text encoder
            act = nn.LeakyReLU(0.2) if leaky_relu else nn.ReLU()
            self.feature_decoder = nn.Sequential(nn.Linear(self.latent_dim + feat_dim, mlp_hidden), act,
                                                 nn.Linear(mlp_hidden, feat_dim))
        else:
            self.bias_mlp = LocalBiasMLP(self.latent_dim, mlp_hidden, width, leaky_relu)
        self.apply(_init_normal)
        self.global_prompts = nn.Parameter(torch.randn(n_ctx, width) * 0.02)  # unused by local_only and feature
        self.to(text_encoder.device)

    def class_prompts(self, classnames: list[str]) -> ClassPrompts:
        """Tokenised class names with slots for this generator's M prompt vectors."""
        return ClassPrompts(self.text_encoder, classnames, self.n_ctx)

    def class_text(self, prompts: ClassPrompts, labels: torch.Tensor) -> torch.Tensor:
        """The zero-shot text feature ("a photo of a <class>.") of each label's class (cvae, feature)."""
        if getattr(prompts, "text_features", None) is None:
            prompts.text_features = self.text_encoder.encode_text([f"a photo of a {n}." for n in prompts.classnames])
        return prompts.text_features[labels.to(prompts.text_features.device)]

    def decode(self, z: torch.Tensor, prompts: ClassPrompts, labels: torch.Tensor) -> torch.Tensor:
        """x̂: normalised text-encoder output of ``[SOS][p + G(z)]×M [name of label] . [EOT]`` (``prompt``,
        ``cvae``, ``untrained``); of ``[p]×M`` (``global_only``: z is ignored) or ``[G(z)]×M`` (``local_only``); or, for
        ``feature``, an MLP of (z, the class's text feature)."""
        if self.variant == "feature":
            return F.normalize(self.feature_decoder(torch.cat([z, self.class_text(prompts, labels).to(z.dtype)], -1)).float(), dim=-1)
        if self.variant == "global_only":
            ctx = self.global_prompts.unsqueeze(0).expand(len(labels), -1, -1)
        else:
            bias = self.bias_mlp(z).unsqueeze(1)  # [B, 1, W]: one bias shared by all M
            ctx = bias.expand(-1, self.n_ctx, -1) if self.variant == "local_only" else self.global_prompts.unsqueeze(0) + bias
        embeddings, eot = prompts.assemble(ctx, labels)
        return F.normalize(self.text_encoder(embeddings, eot).float(), dim=-1)

    def forward(self, x: torch.Tensor, prompts: ClassPrompts, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(reconstruction loss, KL) of a batch of normalised image features ``x`` with their labels."""
        inputs = torch.cat([x, self.class_text(prompts, labels).to(x.dtype)], -1) if self.variant == "cvae" else x
        mu, logvar = self.encoder(inputs)
        mu, logvar = mu.float(), logvar.float()
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)  # reparameterisation
        return vae_loss(self.decode(z, prompts, labels), x, mu, logvar)

    @torch.no_grad()
    def synthesize(self, prompts: ClassPrompts, labels: torch.Tensor) -> torch.Tensor:
        """Synthetic normalised features, one per label, with z drawn from the prior N(0, I)."""
        labels = labels.to(self.global_prompts.device)
        z = torch.randn(len(labels), self.latent_dim, device=labels.device)
        return self.decode(z, prompts, labels)
