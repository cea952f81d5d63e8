"""The base config: every key a run understands, with its default. Config files change only what differs."""

import ml_collections


def get_base_config() -> ml_collections.ConfigDict:
    """Returns the full schema with ImageNet ResNet-50 style defaults."""
    config = ml_collections.ConfigDict()

    # Task: what is learned (a registered task, imagenet_jax/tasks); the training loop is the same for every task.
    config.task = "classification"

    # Model: a registered name (`python -m imagenet_jax.models`) and its variant options.
    config.model = "resnet50"
    # Auxiliary classifiers' loss weight is a model option with each paper's default: e.g.
    # --config.model_options.aux_loss_weight=0.3 (GoogLeNet's default; Inception-v3's is 0.4).
    config.model_options = ml_collections.ConfigDict()
    config.half_precision = False  # bf16 compute; params, loss and BN statistics stay float32.
    # Start from pretrained weights: a file from imagenet_jax.convert.save_converted, or a workdir/checkpoint
    # of ours. Matching arrays are loaded; a classifier of another class count is re-initialized.
    config.init_from = ""
    # () loads every matching array; else regexes (re.fullmatch) over parameter paths such as "block1_conv1/.*":
    # only those arrays are loaded (each must be in init_from), the others keep their fresh random initialization.
    config.init_from_layers = ()
    # Transfer learning (imagenet_jax/training/transfer.py): regexes (re.fullmatch) over parameter paths such as
    # "stem_.*" or "stage1_block1/.*" whose parameters get no update; a BatchNorm whose parameters are all frozen
    # runs in inference mode (running statistics, not updated). linear_probe: freeze all but the classifier.
    # Discriminative fine-tuning is config.lr_multipliers below, e.g. (("stem_.*|stage1_.*", 0.1),).
    config.freeze = ()
    config.linear_probe = False
    # Knowledge distillation (imagenet_jax/training/distill.py): teacher = a workdir of ours or a converted-weights
    # file ("" is off), teacher_model its registered name (and options); loss = alpha * KL(teacher_T || student_T)
    # * T^2 + (1 - alpha) * cross-entropy, T = temperature. The teacher runs in eval mode inside the train step.
    config.distill = ml_collections.ConfigDict({
        "teacher": "", "teacher_model": "", "teacher_model_options": ml_collections.ConfigDict(),
        "temperature": 4.0, "alpha": 0.9})
    # Adversarial training (imagenet_jax/training/adversarial_training.py), in 0-255 pixel units before normalization:
    # method "" (off) | "pgd" (Madry et al.) | "fgsm_rs" (fast FGSM with random start, Wong et al. 2020);
    # step_size 0 is the method's default (pgd: 2.5 * epsilon / steps; fgsm_rs: 1.25 * epsilon).
    config.adversarial_training = ml_collections.ConfigDict(
        {"method": "", "epsilon": 8.0, "steps": 7, "step_size": 0.0, "random_start": True})

    # Data.
    config.dataset = "imagenet2012"  # a registered dataset (imagenet_jax/data/datasets.py).
    config.data_dir = ""  # TFDS data dir; "" means $TFDS_DATA_DIR or ~/tensorflow_datasets.
    config.manual_dir = ""  # where manually downloaded source files are; "" means the dataset's default.
    config.train_split = ""  # "" means the dataset's default.
    config.eval_split = ""
    config.num_classes = 0  # 0 means: read it from the dataset.
    config.image_size = 224
    config.crop_pct = 0.875  # eval: resize the short side to image_size / crop_pct, then center crop.
    # Preprocessing op chains ("op|op(arg)"); see imagenet_jax/data/preprocessing.py for the ops.
    config.train_preprocess = "random_resized_crop|flip_lr"
    config.eval_preprocess = "resize_center_crop"
    config.normalize_mean = (0.485 * 255, 0.456 * 255, 0.406 * 255)
    config.normalize_std = (0.229 * 255, 0.224 * 255, 0.225 * 255)
    # Training reads each epoch as a full random permutation of the split, a function of (seed, epoch) only:
    # the same global batches for any process count (imagenet_jax/data/pipeline.py).
    config.cache_dataset = False  # keep decoded images in memory (small datasets only).
    # > 0: training phases at image sizes up to this (the small phases of image_size_schedule) read every image
    # decoded once at reduced JPEG scale (short side >= 1.15x this) and kept in memory; larger phases read files.
    config.lowres_cache_max_size = 0
    # > 1: repeated augmentation (DeiT; ResNet strikes back A1/A2: 3): each image of an epoch-slot appears as this
    # many differently augmented copies, made from one decode; an epoch then shows ~1/k of the images, k times.
    config.aug_repeats = 1
    # Eval sets beyond the main split, each scored in full by a registered evaluator (imagenet_jax/evaluators) and
    # logged as "<set>/<metric>": {name: {"type", "dataset": "" (the run's), "split": "" (its eval split),
    # "holdout": N (N training examples held out, never trained on: a minival), ...the type's options}}, e.g.
    # {"minival": {"type": "classification", "holdout": 10000}, "v2": {"type": "classification", "dataset":
    # "imagenet_v2", "split": "test"}, "test_per_class": {"type": "per_class"}}; on the command line
    # --eval NAME=TYPE[,key=value...] adds one.
    config.evals = ml_collections.ConfigDict()
    # The main eval set's evaluator and its options (its line carries best_top1; the sweep table reports it):
    # {"type": "classification"} is one center crop; e.g. {"type": "multicrop", "mode": "dense", "resize": 384}
    # is VGG's dense evaluation at test scale Q=384 (imagenet_jax/evaluators/multicrop.py).
    config.main_eval = ml_collections.ConfigDict({"type": "classification"})
    config.best_metric = ""  # "<set>/<metric>" that picks the best checkpoint; "" is the main set's top1.
    config.eval_image_size = 0  # 0 means image_size (or the schedule's last); larger trains at lower res (FixRes).
    config.image_size_schedule = ""  # progressive resizing, "EPOCH:SIZE,..." e.g. "0:128,30:192,60:224".
    config.interpolation = "bilinear"  # resize method: bilinear | bicubic | area | nearest | lanczos3 | ...
    config.antialias = False  # antialiased downscaling (torchvision/PIL style); about half the CPU throughput.

    # Augmentation is ops of config.train_preprocess above (imagenet_jax/data/augment.py), e.g.
    # "random_resized_crop|flip_lr|randaugment(2, 9)|color_jitter(0.4)|random_erasing(0.25)"; the old flat keys
    # (color_jitter, rotation_range...) are in imagenet_jax/config/moved_keys.py with the op that replaces each.
    # Mixing happens on the device, inside the train step (imagenet_jax/training/mixing.py):
    config.mixup_alpha = 0.0  # Beta(alpha, alpha) mixing on device (0.2 is usual).
    config.cutmix_alpha = 0.0  # CutMix's Beta(alpha, alpha) (1.0 is usual).
    config.mix_prob = 1.0  # probability that a batch is mixed at all, when mixup or cutmix is on.
    config.mix_switch_prob = 0.5  # with both on: probability of CutMix rather than Mixup for a batch.

    # Duration and batch.
    config.batch_size = 1024  # global, over all devices and processes.
    config.per_device_batch_size = 0  # > 0: batch_size becomes this times the device count (wins).
    config.eval_batch_size = 0  # 0 means batch_size.
    config.num_epochs = 90.0
    config.num_train_steps = -1  # > 0 wins over num_epochs.

    # Optimizer and schedule by name (imagenet_jax/training/optim/); `python -m imagenet_jax.training.optim` lists the
    # names and their kwargs. Optimizers: sgd | adamw | rmsprop | lars | lamb | any optax optimizer (adam, lion...).
    config.optimizer = ml_collections.ConfigDict({"name": "sgd", "kwargs": {"momentum": 0.9, "nesterov": True}})
    config.learning_rate = 0.1  # peak, at lr_reference_batch_size; scaled linearly with the examples per update.
    config.lr_reference_batch_size = 256  # 0 disables linear scaling (Goyal et al. 2017).
    # Applied as the optimizer defines: L2 on the gradient before momentum (sgd, rmsprop: PyTorch's
    # SGD(weight_decay)), decoupled (adamw, lamb), in the trust ratio (lars).
    config.weight_decay = 1e-4
    # (regex, multiplier) rules over parameter paths such as "head/kernel" or "stage1_block1/BatchNorm_0/scale":
    # the regex must match the whole path, the first matching rule wins, unmatched parameters get 1.
    config.lr_multipliers = ()  # e.g. (("head/.*", 10.0),)
    config.weight_decay_multipliers = ((".*/(bias|scale)", 0.0),)  # no decay on BN and biases; () decays all.
    # Schedules: constant | step | exponential | cosine | linear | polynomial | one_cycle, each after a linear
    # warmup from 0; e.g. {"name": "step", "kwargs": {"boundaries_epochs": (30, 60, 80), "factor": 0.1}}.
    config.schedule = ml_collections.ConfigDict({"name": "cosine", "warmup_epochs": 5.0, "kwargs": {}})
    config.grad_clip_norm = 0.0  # > 0: clip the gradients' global norm to this before the optimizer; 0: off.
    # > 1: accumulate this many batches of batch_size into one update (optax.MultiSteps); the schedule and the
    # linear scaling rule count updates of batch_size x grad_accumulation_steps examples.
    config.grad_accumulation_steps = 1
    # Reduce on plateau (train/optim/plateau.py): multiply the learning rate by `factor` after `patience`
    # evaluations in a row without eval metric "<split>/<key>" (e.g. "test/top1") improving by more than min_delta,
    # at most max_reductions times (0: no limit); on top of the schedule; mode max | min | auto; metric "" is off.
    config.lr_plateau = ml_collections.ConfigDict(
        {"metric": "", "mode": "auto", "factor": 0.1, "patience": 5, "min_delta": 0.0, "max_reductions": 0})
    config.label_smoothing = 0.1

    # Regularization (imagenet_jax/core/losses.py, ema.py, early_stopping.py). Dropout and stochastic depth are
    # model options: --config.model_options.dropout_rate=R (classifier dropout; every model, each with its
    # published default, 0 for ResNets) and --config.model_options.stochastic_depth_rate=R (ResNets, ConvNeXt: the
    # last block's drop probability, rising linearly from 0 at the first block).
    config.loss = "softmax_xent"  # softmax_xent | sigmoid_xent (binary cross-entropy per class, ResNet strikes back).
    config.bce_target_threshold = 0.0  # sigmoid_xent: > 0 makes (smoothed, mixed) targets 1 above it, else 0.
    config.ema_decay = 0.0  # > 0: keep an EMA of weights and BN statistics, evaluated as "<split>_ema"; 0: off.
    config.ema_warmup = False  # EMA decay min(ema_decay, (1 + step) / (10 + step)) early in training.
    # Stop when eval metric "<split>/<key>" (as in metrics.jsonl, e.g. "test/top1") has not improved by more than
    # min_delta for `patience` evaluations; mode max | min | auto (min for loss/error keys); metric "" is off.
    config.early_stopping = ml_collections.ConfigDict(
        {"metric": "", "mode": "auto", "patience": 5, "min_delta": 0.0})
    # A trial of a hyperparameter search (`python -m imagenet_jax tune` sets these; trial -1 is an ordinary run):
    # each evaluation's `metric` ("" is best_metric) goes to the Optuna study, whose `pruner` may stop the run
    # (imagenet_jax/training/trial_pruning.py).
    config.tune = ml_collections.ConfigDict({"storage": "", "study": "", "trial": -1, "pruner": "none", "metric": ""})

    # Compression (imagenet_jax/compress; `python -m imagenet_jax.compress report|quantize --workdir DIR`).
    # Magnitude pruning (Zhu & Gupta 2017), method "" is off: sparsity rises from initial_sparsity to target_sparsity
    # as a cubic between begin_step and end_step (optimizer updates; 0: 3/4 of the run), masks recomputed every
    # `frequency` updates; scope global | layer; structure unstructured | channel (whole output channels by L2 norm).
    # Prunable: kernels whose path matches an `include` regex and no `exclude` one (default: every conv/dense kernel
    # but the ResNets' stem convolution(s) and every model's "head" classifier, which are small and sensitive).
    config.pruning = ml_collections.ConfigDict({
        "method": "", "target_sparsity": 0.5, "initial_sparsity": 0.0, "begin_step": 0, "end_step": 0,
        "frequency": 100, "scope": "global", "structure": "unstructured", "include": (r".*kernel",),
        "exclude": (r"stem.*", r"head/.*")})
    # int8 quantization through qwix: mode "qat" trains with fake-quantized convs/dense layers; "ptq" (or any run)
    # is converted by `python -m imagenet_jax.compress quantize` after calibrating on calibration_steps batches.
    config.quantization = ml_collections.ConfigDict(
        {"mode": "", "weight_dtype": "int8", "act_dtype": "int8", "calibration_steps": 10})

    # Bookkeeping.
    config.seed = 0
    config.log_every_steps = 100
    config.eval_every_steps = 0  # 0 means once per epoch; always at the end.
    config.checkpoint_every_steps = 0  # 0 means once per epoch; always at the end.
    config.keep_checkpoints = 3  # the newest ones; the best checkpoint (config.best_metric) is kept besides.
    config.allow_config_change = False  # resume even if batch size, schedule or duration changed.
    # NaN/Inf loss or gradients: "stop" the run, or "skip" the update (weights kept, step and schedule advance;
    # train logs average the finite steps and count the others as skipped_steps).
    config.nonfinite_policy = "stop"
    config.compilation_cache_dir = "~/.cache/imagenet_jax/xla"  # persistent XLA cache; "" disables it.
    config.min_free_disk_gb = 0.0  # refuse to start with less free disk in workdir; 0: 3 checkpoints' worth.
    # Performance (imagenet_jax/training/throughput.py, profiling.py, models/conv_lowering.py).
    config.peak_flops_per_device = 0.0  # FLOP/s for MFU; 0: the GPU/TPU table, or a matmul probe on CPU.
    config.profile_steps = ()  # (start, stop): jax.profiler trace of those train steps into WORKDIR/plugins/profile.
    config.cpu_conv_lowering = "auto"  # CPU only: auto (small maps as patches + matmul) | xla | patches.
    # CPU only, command line runs: host devices to split the batch over; 0: one per core, as many as divide the
    # batch sizes (parallel/cpu_devices.py). XLA_FLAGS' --xla_force_host_platform_device_count wins.
    config.cpu_devices = 0
    # Reporting (imagenet_jax/report, imagenet_jax/training/wandb_logger.py).
    config.write_report = True  # write WORKDIR/report/index.html when the run ends (process 0).
    config.wandb_project = ""  # Weights & Biases project: metrics, config, report figures go there too; "" = off.
    config.wandb_entity = ""  # W&B user or team; "" = the logged-in default.
    config.wandb_mode = "online"  # online | offline (files under $WANDB_DIR or WORKDIR/wandb, `wandb sync` later).

    # Parallelism: the mesh is (data, fsdp); the batch is split over all devices.
    config.fsdp_devices = 1  # > 1: shard params/optimizer state over this many devices (FSDP).
    config.fsdp_min_size = 2**18  # arrays smaller than this many elements stay replicated.
    # (regex, "fsdp" | "replicate") pairs over state paths ("params/head/kernel", "opt_state/..."); first wins.
    config.fsdp_rules = ()
    # BatchNorm statistics: 0 = over the global batch; N > 0 = "ghost" BN over groups of N examples (ResNets).
    config.bn_group_size = 0
    return config
