"""`multicrop`: softmax averaged over views: test-time augmentation by crops, flips and scales, and dense (VGG).

The input pipeline delivers each image as the center `resize` x `resize` square (short side resized to
`resize`, default image_size / crop_pct, then center-cropped); crops of image_size are cut on device.
`five_crop` is torchvision's FiveCrop (top-left, top-right, bottom-left, bottom-right, center); `ten_crop` is its
TenCrop (AlexNet/ResNet's protocol): the five, then the same five of the horizontally flipped image. `flip: True`
adds the mirror of every view to `center` and `five_crop` (so `five_crop` with flip is `ten_crop`): the usual
test-time augmentation is `--eval tta=multicrop,mode=center,flip=True[,scales=(...)]`. With `scales`
(short sides Q), the square is resized on device to each Q and cropped there (multi-scale, VGG's table 4
protocol with crops). `dense` is VGG's dense evaluation (Sec. 3.2): the whole Q x Q square and its mirror go
through the net with its FC layers applied as convolutions (models whose `supports_dense_eval` is True: the VGG
family), the class-score map is averaged, and the softmax of the two (and of every scale) is averaged. Unlike
the paper, the input is the central square of the short-side-Q image rather than the whole rectangle, so that a
batch has one shape.
"""

from __future__ import annotations

from collections.abc import Iterator

import jax
import jax.numpy as jnp
import ml_collections

from imagenet_jax.errors import ConfigError
from imagenet_jax.evaluators.base import Evaluator, count_metrics, count_sums, scored_mask
from imagenet_jax.evaluators.classification import averages
from imagenet_jax.evaluators.logits import correct, eval_logits
from imagenet_jax.evaluators.registry import register

MODES = ("center", "five_crop", "ten_crop", "dense")
MIRRORED = ("ten_crop", "dense")  # modes whose views already include the mirror image


def crop_boxes(height: int, width: int, size: int, mode: str, flip: bool = False) -> list[tuple[int, int, bool]]:
    """(top, left, from the horizontally flipped image) of each crop, in torchvision's order (dense: the whole
    image and its mirror); `flip` appends the mirrored crops."""
    if mode == "dense":
        return [(0, 0, False), (0, 0, True)]
    center = (int(round((height - size) / 2.0)), int(round((width - size) / 2.0)))
    boxes = [center] if mode == "center" else [
        (0, 0), (0, width - size), (height - size, 0), (height - size, width - size), center]
    mirrors = (False, True) if flip or mode == "ten_crop" else (False,)
    return [(top, left, mirror) for mirror in mirrors for top, left in boxes]


def crops(images: jax.Array, size: int, mode: str, flip: bool = False) -> list[jax.Array]:
    """The crops of NHWC `images` (static shapes), in crop_boxes' order."""
    height, width = images.shape[1], images.shape[2]
    flipped = images[:, :, ::-1]
    if mode == "dense":
        return [images, flipped]
    return [(flipped if mirror else images)[:, top:top + size, left:left + size]
            for top, left, mirror in crop_boxes(height, width, size, mode, flip)]


def averaged_probabilities(logits_of, images: jax.Array, size: int, mode: str, scales: tuple[int, ...],
                           flip: bool = False) -> jax.Array:
    """Mean softmax over every view of every scale (the square itself when `scales` is empty)."""
    views = []
    for scale in scales or (images.shape[1],):
        scaled = images if scale == images.shape[1] else jax.image.resize(
            images.astype(jnp.float32), (images.shape[0], scale, scale, images.shape[3]), "bilinear")
        views.extend(crops(scaled, size, mode, flip))
    total = sum(jax.nn.softmax(logits_of(view).astype(jnp.float32)) for view in views)
    return total / len(views)


@register("multicrop")
class MultiCrop(Evaluator):
    """top1/top5/loss of the crop-averaged softmax."""

    OPTIONS = {"mode": "ten_crop", "resize": 0, "scales": (), "flip": False}

    @classmethod
    def validate(cls, name: str, options: dict, where: str = "") -> None:
        """mode in MODES; resize an integer >= 0; scales positive integers; flip a bool (not with mirrored modes)."""
        super().validate(name, options, where)
        where = where or f"config.evals.{name}"
        mode = options.get("mode", "ten_crop")
        if mode not in MODES:
            raise ConfigError(f"{where}.mode={mode!r} is not one of: {', '.join(MODES)}.")
        flip = options.get("flip", False)
        if not isinstance(flip, bool):
            raise ConfigError(f"{where}.flip={flip!r} must be True or False.")
        if flip and mode in MIRRORED:
            raise ConfigError(f"{where}.flip: mode {mode!r} already averages each view with its mirror image; "
                              "flip=True adds mirrors to center or five_crop.")
        resize = options.get("resize", 0)
        if not isinstance(resize, int) or isinstance(resize, bool) or resize < 0:
            raise ConfigError(f"{where}.resize={resize!r} must be an integer >= 0 (0: image_size / "
                              "crop_pct).")
        scales = options.get("scales", ())
        if isinstance(scales, (str, int)) or not all(isinstance(s, int) and s > 0 for s in scales):
            raise ConfigError(f"{where}.scales={scales!r} must be a tuple of short sides in pixels, "
                              "e.g. (256, 384, 512).")

    def __init__(self, *args, **kwargs):
        """Checks the sizes against image_size and compiles the step."""
        super().__init__(*args, **kwargs)
        context, config = self.context, self.context.config
        from imagenet_jax.data.inputs import eval_image_size

        size = eval_image_size(config)
        self.scales = tuple(self.options["scales"])
        self.square = max((self.options["resize"] or round(size / config.crop_pct), *self.scales))
        if min((self.square, *self.scales)) < size:
            raise ConfigError(f"{self.where}: resize/scales must be >= the crop size {size}.")
        mode = self.options["mode"]
        dense = {"dense": True} if mode == "dense" else {}
        if dense and not getattr(context.model, "supports_dense_eval", False):
            raise ConfigError(f"{self.where}.mode='dense' needs a model whose classifier can slide over "
                              f"the feature map (the VGG family); {type(context.model).__name__} cannot: use "
                              "ten_crop or center.")
        classes = context.num_classes if self.eval_set.class_subset is None else len(self.eval_set.class_subset)

        def step(state, batch):
            probabilities = averaged_probabilities(
                lambda view: eval_logits(context.model, state, view, context.mean, context.std,
                                         self.eval_set.class_subset, **dense), batch["image"], size, mode, self.scales,
                self.options["flip"])
            mask = scored_mask(batch)
            weights = mask.astype(jnp.float32)
            labels = jnp.clip(batch["label"], 0, classes - 1)
            nll = -jnp.log(jnp.take_along_axis(probabilities, labels[:, None], -1)[:, 0] + 1e-12)
            return {"loss": jnp.sum(nll * weights),
                    "top1": jnp.sum(correct(probabilities, batch, 1) * weights),
                    "top5": jnp.sum(correct(probabilities, batch, 5) * weights),
                    **count_sums(batch, mask)}

        self.step_fn = context.jit(step)

    def batches(self) -> Iterator[dict]:
        """The center `square` x `square` of each image (short side resized to it)."""
        if self._batches is None:
            from imagenet_jax.data import inputs

            config = ml_collections.ConfigDict(self.context.config.to_dict())
            config.eval_image_size, config.crop_pct, config.eval_preprocess = self.square, 1.0, "resize_center_crop"
            self._batches = inputs.eval_stream(
                config, self.eval_set, local_batch_size=self.context.local_batch_size,
                process_index=self.context.process_index, process_count=self.context.process_count)
        return self._batches()

    def run(self, state, step: int) -> Iterator[tuple[str, float]]:
        """loss, top1, top5 of the averaged softmax; num_examples."""
        totals = self.accumulate(self.step_fn, state)
        yield from averages(totals, ("loss", "top1", "top5")).items()
        yield from count_metrics(totals).items()
