"""The base config: every key a run understands, with its default. Config files change only what differs."""

import ml_collections


def get_base_config() -> ml_collections.ConfigDict:
    """Returns the full schema with ImageNet ResNet-50 style defaults."""
    config = ml_collections.ConfigDict()

    # Model: a registered name (`python -m imagenet_jax.models`) and its variant options.
    config.model = "resnet50"
    config.model_options = ml_collections.ConfigDict()
    config.half_precision = False  # bf16 compute; params, loss and BN statistics stay float32.
    # Start from pretrained weights: a file from imagenet_jax.convert.save_converted, or a workdir/checkpoint
    # of ours. Matching arrays are loaded; a classifier of another class count is re-initialized.
    config.init_from = ""

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
    config.shuffle_buffer_size = 16_384
    config.cache_dataset = False  # keep decoded images in memory (small datasets only).
    # Training data is cut into this many shards, each shuffled (shuffle_buffer_size examples) and augmented
    # on its own; 0 means one per process. A fixed value makes batches independent of the process count.
    config.data_shards = 0
    # More evaluation sets, each scored in full and logged under its own name: "DATASET:SPLIT",
    # "folder:/path:SPLIT" or "NAME=..." (e.g. "imagenet_v2:test", "real=imagenet2012_real:validation").
    config.extra_eval_splits = ()
    config.minival_examples = 0  # > 0: hold out this many training examples, evaluated as split "minival".
    config.eval_image_size = 0  # 0 means image_size (or the schedule's last); larger trains at lower res (FixRes).
    config.image_size_schedule = ""  # progressive resizing, "EPOCH:SIZE,..." e.g. "0:128,30:192,60:224".
    config.interpolation = "bilinear"  # resize method: bilinear | bicubic | area | nearest | lanczos3 | ...
    config.antialias = False  # antialiased downscaling (torchvision/PIL style); about half the CPU throughput.

    # Augmentation, each off by default; appended to train_preprocess (imagenet_jax/data/augment.py).
    config.rotation_range = 0.0  # Keras ImageDataGenerator style: degrees,
    config.width_shift_range = 0.0  # fractions of the width and height,
    config.height_shift_range = 0.0
    config.zoom_range = 0.0  # zoom factors in [1 - zoom_range, 1 + zoom_range],
    config.shear_range = 0.0  # degrees,
    config.fill_mode = "nearest"  # and how uncovered pixels are filled: nearest | constant | reflect | wrap.
    config.autoaugment = ""  # "imagenet": AutoAugment's ImageNet policy.
    config.randaugment_num_ops = 0  # RandAugment N (2 is usual); 0 disables it.
    config.randaugment_magnitude = 9.0  # RandAugment M, in [0, 10].
    config.color_jitter = 0.0  # brightness/contrast/saturation strength (0.4 is usual).
    config.random_erasing = 0.0  # probability of replacing a random rectangle by noise (0.25 is usual).
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

    # Optimizer and schedule.
    config.optimizer = "sgd"  # sgd | adamw
    config.learning_rate = 0.1  # at lr_reference_batch_size; scaled linearly with batch_size.
    config.lr_reference_batch_size = 256  # 0 disables linear scaling (Goyal et al. 2017).
    config.momentum = 0.9
    config.nesterov = True
    config.adam_b2 = 0.999
    config.weight_decay = 1e-4
    config.decay_bn_and_bias = False  # False: no weight decay on BN scales/offsets and biases.
    config.schedule = "cosine"  # cosine | step | constant
    config.warmup_epochs = 5.0
    config.lr_step_epochs = (30.0, 60.0, 80.0)  # schedule="step": multiply by lr_step_factor at each.
    config.lr_step_factor = 0.1
    config.label_smoothing = 0.1
    config.aux_loss_weight = 0.3  # weight of auxiliary classifiers' losses (GoogLeNet, Inception-v3).

    # Bookkeeping.
    config.seed = 0
    config.log_every_steps = 100
    config.eval_every_steps = 0  # 0 means once per epoch; always at the end.
    config.checkpoint_every_steps = 0  # 0 means once per epoch; always at the end.
    config.keep_checkpoints = 3  # the newest ones; the best-top-1 checkpoint is kept besides.
    config.allow_config_change = False  # resume even if batch size, schedule or duration changed.
    config.nonfinite_policy = "stop"  # NaN/Inf loss or gradients: "stop" the run, or "skip" the update.
    config.compilation_cache_dir = "~/.cache/imagenet_jax/xla"  # persistent XLA cache; "" disables it.
    config.min_free_disk_gb = 0.0  # refuse to start with less free disk in workdir; 0: 3 checkpoints' worth.

    # Parallelism: the mesh is (data, fsdp); the batch is split over all devices.
    config.fsdp_devices = 1  # > 1: shard params/optimizer state over this many devices (FSDP).
    config.fsdp_min_size = 2**18  # arrays smaller than this many elements stay replicated.
    # (regex, "fsdp" | "replicate") pairs over state paths ("params/head/kernel", "opt_state/..."); first wins.
    config.fsdp_rules = ()
    # BatchNorm statistics: 0 = over the global batch; N > 0 = "ghost" BN over groups of N examples (ResNets).
    config.bn_group_size = 0
    return config
