"""Mixup and CutMix on device, inside the jit-compiled train step: a pure function of (key, batch).

Batch mode, as timm does it: one mixing coefficient per batch; each example is mixed with its mirror in the
batch (example i with example B-1-i). With probability `prob` the batch is mixed at all; when both alphas are
positive, CutMix is chosen with probability `switch_prob`, else Mixup.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def mixing_enabled(mixup_alpha: float, cutmix_alpha: float, prob: float) -> bool:
    """True when mix_batch would ever change a batch."""
    return prob > 0 and (mixup_alpha > 0 or cutmix_alpha > 0)


def cutmix_box(key: jax.Array, height: int, width: int, lam: jax.Array) -> tuple[jax.Array, jax.Array]:
    """A box covering about 1 - lam of the image (clipped at the borders): (mask HxW bool, exact 1 - area share)."""
    cut = jnp.sqrt(1.0 - lam)
    cut_h, cut_w = jnp.floor(height * cut), jnp.floor(width * cut)
    center_y, center_x = jax.random.uniform(key, (2,)) * jnp.array([height, width])
    top = jnp.clip(jnp.floor(center_y - cut_h / 2), 0, height)
    bottom = jnp.clip(jnp.floor(center_y + cut_h / 2), 0, height)
    left = jnp.clip(jnp.floor(center_x - cut_w / 2), 0, width)
    right = jnp.clip(jnp.floor(center_x + cut_w / 2), 0, width)
    rows = jnp.arange(height)[:, None]
    cols = jnp.arange(width)[None, :]
    inside = (rows >= top) & (rows < bottom) & (cols >= left) & (cols < right)
    return inside, 1.0 - (bottom - top) * (right - left) / (height * width)


def mix_batch(
    key: jax.Array,
    images: jax.Array,
    targets: jax.Array,
    *,
    mixup_alpha: float,
    cutmix_alpha: float,
    prob: float = 1.0,
    switch_prob: float = 0.5,
    mask: jax.Array | None = None,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Mixes NHWC `images` and their (one-hot or smoothed) `targets` [N, classes]; returns (images, targets, lam).

    lam [N] is the share of each example's own image and target (1.0 where it was left alone). With `mask`
    [N] (False: the stand-in of an unreadable image), an example whose partner is a stand-in is left unmixed,
    so no stand-in pixels or labels ever reach a real example.
    """
    apply_key, switch_key, mixup_key, cutmix_key, box_key = jax.random.split(key, 5)
    use_cutmix = jnp.asarray(cutmix_alpha > 0)
    if mixup_alpha > 0 and cutmix_alpha > 0:
        use_cutmix = jax.random.uniform(switch_key) < switch_prob
    lam_mixup = jax.random.beta(mixup_key, mixup_alpha, mixup_alpha) if mixup_alpha > 0 else jnp.float32(1.0)
    lam_cutmix = jax.random.beta(cutmix_key, cutmix_alpha, cutmix_alpha) if cutmix_alpha > 0 else jnp.float32(1.0)
    apply = jax.random.uniform(apply_key) < prob

    partners = jnp.flip(images, axis=0)
    box, lam_box = cutmix_box(box_key, images.shape[1], images.shape[2], lam_cutmix)
    batch_lam = jnp.where(apply, jnp.where(use_cutmix, lam_box, lam_mixup), 1.0).astype(jnp.float32)
    cut = jnp.where(box[None, :, :, None], partners, images)
    blended = batch_lam.astype(images.dtype) * images + (1 - batch_lam).astype(images.dtype) * partners
    mixed = jnp.where(apply, jnp.where(use_cutmix, cut, blended), images)
    lam = jnp.full((images.shape[0],), batch_lam)
    if mask is not None:
        mixes_with_real = jnp.flip(mask, axis=0)
        mixed = jnp.where(mixes_with_real[:, None, None, None], mixed, images)
        lam = jnp.where(mixes_with_real, lam, 1.0)
    mixed_targets = lam[:, None] * targets + (1.0 - lam[:, None]) * jnp.flip(targets, axis=0)
    return mixed, mixed_targets, lam
