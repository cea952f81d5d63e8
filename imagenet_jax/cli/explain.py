"""explain: attribution maps, model pictures and the numbers that check them, for a run's checkpoint.

    python -m imagenet_jax explain --workdir DIR [--checkpoint best|latest|STEP] [--split 'test[:8]' | --images F ...]
        [--methods gradient,integrated_gradients,gradcam,occlusion] [--option integrated_gradients.steps=32 ...]
        [--layer NAME] [--class_models 0,1] [--embedding tsne|umap|pca|''] [--no_checks]
    python -m imagenet_jax explain --workdir OUT --config configs/x.py --init_from weights.msgpack --images a.jpg
    python -m imagenet_jax explain --list

Writes DIR/explain/<step>/: one overlay PNG per image and method, grid.png, curves.png (deletion and insertion
against random pixel orders), filters.png, feature_maps.png, embedding.png, neighbours.png, explain.json; the
run's report (`report`) shows them. The maps explain each image's predicted class. Methods and their options:
--list (imagenet_jax/explain/methods.py).
"""

from __future__ import annotations

import argparse
import os

from imagenet_jax.cli import shared
from imagenet_jax.cli.command import Command, UsageError, register


def add_flags(parser: argparse.ArgumentParser) -> None:
    """explain's flags."""
    parser.add_argument("--list", action="store_true", help="list the methods and their options, then exit")
    shared.WORKDIR.add(parser, help="the run to explain (with --init_from: where to write)")
    shared.CHECKPOINT.add(parser)
    shared.EMA.add(parser)
    parser.add_argument("--images", nargs="+", default=[], metavar="FILE",
                        help="image files or directories, preprocessed as the run evaluates")
    parser.add_argument("--split", default="", metavar="SPLIT",
                        help="a split of the run's dataset to take --count images from; '': its eval split")
    parser.add_argument("--count", type=int, default=8, metavar="N", help="images taken from --split")
    parser.add_argument("--methods", default="gradient,integrated_gradients,gradcam,occlusion", metavar="M,...",
                        help="comma-separated attribution methods (--list)")
    parser.add_argument("--option", action="append", default=[], metavar="METHOD.OPTION=VALUE",
                        help="a method's option (repeatable), e.g. integrated_gradients.steps=32")
    parser.add_argument("--layer", default="", metavar="NAME",
                        help="Grad-CAM's and the feature maps' layer; '': the last convolutional stage")
    parser.add_argument("--no_checks", action="store_true",
                        help="skip the deletion/insertion and randomization checks")
    parser.add_argument("--check_steps", type=int, default=16, metavar="N",
                        help="points of the deletion and insertion curves")
    parser.add_argument("--deletion_fill", default="zero", metavar="zero|mean|blur",
                        help="what the deletion check turns removed pixels into (zero: black)")
    parser.add_argument("--embedding", default="tsne", metavar="tsne|umap|pca|''",
                        help="projection of the penultimate features of the eval split; '': none")
    parser.add_argument("--embedding_examples", type=int, default=1000, metavar="N",
                        help="eval images in the embedding and the neighbour gallery")
    parser.add_argument("--neighbours", type=int, default=5, metavar="K", help="nearest neighbours shown per image")
    parser.add_argument("--class_models", default="", metavar="C,...",
                        help="class indices to visualize by gradient ascent (Simonyan et al.); '': none")
    parser.add_argument("--compare_workdir", default="", metavar="DIR",
                        help="another training of the same network (another seed): each method's maps of its "
                             "checkpoint are rank-correlated with these, beside the randomization check")
    parser.add_argument("--seed", type=int, default=0, help="seed of every random choice (noise, orders, t-SNE)")
    parser.add_argument("--out", default="", metavar="DIR", help="where to write; '': DIR/explain/<step>")
    parser.add_argument("--init_from", default="", metavar="WEIGHTS",
                        help="converted weights to explain instead of a checkpoint (needs --config)")
    parser.add_argument("--config", default="", metavar="FILE.py[:VARIANT]",
                        help="the config the --init_from weights belong to")
    shared.BATCH_SIZE.add(parser, help="images per attribution batch; 0: 32")
    shared.DATA_DIR.add(parser)


def run(args: argparse.Namespace) -> int:
    """Explains and prints each method's checks (or, with --list, the methods)."""
    from imagenet_jax.explain import job, methods

    if args.list:
        for name in methods.method_names():
            defaults = methods.method_defaults(name)
            print(f"{name}: " + (", ".join(f"{key}={value!r}" for key, value in defaults.items()) or "(no options)"))
        return 0
    if not args.workdir:
        raise UsageError("--workdir is required (the run to explain, or where to write with --init_from)")
    if args.images and args.split:
        raise UsageError("give --images or --split, not both")
    chosen = tuple(name.strip() for name in args.methods.split(",") if name.strip())
    request = job.Request(
        methods=chosen, options=job.parse_options(args.option, chosen), layer=args.layer, checks=not args.no_checks,
        check_steps=args.check_steps, deletion_fill=args.deletion_fill, embedding=args.embedding,
        embedding_examples=args.embedding_examples,
        neighbours=args.neighbours, class_models=_indices(args.class_models), batch_size=args.batch_size or 32,
        seed=args.seed)
    job.check_request(request)  # before restoring anything
    run_view, variables, step = _weights(args)
    images, labels, titles = _images(run_view, args)
    compare = None
    if args.compare_workdir:
        from imagenet_jax.runs import load_run

        compare = load_run(args.compare_workdir).variables(args.checkpoint, args.ema)
    result = job.explain(run_view, variables, step, images, labels, titles, request, args.out or None, compare)
    print(summary(result))
    where = args.out or os.path.join(args.workdir, "explain", str(step))
    print(f"wrote {where}/ (explain.json, grid.png, one folder per method)")
    return 0


def summary(result: dict) -> str:
    """One line per method: deletion and insertion areas against random orders, randomization correlation."""
    lines = [f"step {result['step']}, layer {result['layer']}, {len(result['images'])} images"]
    for name, entry in result["methods"].items():
        if "deletion_insertion" not in entry:
            lines.append(f"  {name}")
            continue
        curves, randomized = entry["deletion_insertion"], entry["randomization"]
        lines.append(f"  {name:24s} deletion {curves['deletion_auc']:.3f} (random {curves['random_deletion_auc']:.3f})"
                     f"  insertion {curves['insertion_auc']:.3f} (random {curves['random_insertion_auc']:.3f})"
                     f"  randomized-model rank correlation {randomized['spearman']:.3f}"
                     + (f" (another training: {entry['other_training_spearman']:.3f})"
                        if "other_training_spearman" in entry else ""))
    return "\n".join(lines)


def _indices(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise UsageError(f"--class_models {text!r} must be comma-separated class indices") from None


def _weights(args: argparse.Namespace):
    """(a Run, {"params", "batch_stats"}, step) of the checkpoint or of the converted weights."""
    from imagenet_jax.evaluate import load_weights
    from imagenet_jax.runs import Run, load_run

    config, variables, step = load_weights(args)
    if args.data_dir:
        config.data_dir = args.data_dir
    if not args.init_from:
        run = load_run(args.workdir)
        run.config = config
        return run, variables, step
    import jax
    import jax.numpy as jnp

    from imagenet_jax.training.init_from import merge_pretrained

    run = Run.from_config(config, args.workdir)
    shape = (1, run.image_size, run.image_size, run.channels)
    initial = jax.device_get(run.model.init(jax.random.key(0), jnp.zeros(shape), train=False))
    variables = merge_pretrained({"params": initial["params"], "batch_stats": initial.get("batch_stats", {})},
                                 variables, run.num_classes)
    return run, variables, step


def _images(run, args: argparse.Namespace):
    """(uint8 images at the run's eval size, labels (-1: unknown), titles)."""
    import numpy as np

    from imagenet_jax.errors import UserFacingError
    from imagenet_jax.explain import job
    from imagenet_jax.runs import Run

    if args.images:
        from imagenet_jax.predict import eval_preprocessor, image_files

        preprocess = eval_preprocessor(run)
        files = image_files(args.images)
        if not files:
            raise UserFacingError(f"--images {' '.join(args.images)}: no image files there")
        images = []
        for path in files:
            with open(path, "rb") as stream:
                try:
                    images.append(preprocess(stream.read()))
                except Exception as error:  # noqa: BLE001  (TensorFlow's decode errors have many types)
                    raise UserFacingError(f"{path}: cannot decode this image ({type(error).__name__})") from None
        return np.stack(images), np.full(len(files), -1), [os.path.basename(path) for path in files]
    if args.count < 1:
        raise UsageError("--count must be at least 1")
    split = args.split or run.config.eval_split
    view = Run.from_config(run.config, run.workdir)
    view.config.eval_split = split
    images, labels = job.first_examples(view, args.count)
    names = run.class_names
    return images, labels, [f"{split} #{index}: {names[int(label)]}" for index, label in enumerate(labels)]


COMMAND = register("explain", Command(
    help="attribution maps (Grad-CAM, Integrated Gradients, ...), model pictures and their checks for a checkpoint",
    add_flags=add_flags, run=run, description=__doc__))
