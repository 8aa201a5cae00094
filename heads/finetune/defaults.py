"""Defaults of ``finetune`` and ``tsn``, kept free of torch so the CLI can show them in ``--help``
without importing it (cli/tsn_cmd.py); heads.finetune.finetune and heads.finetune.tsn use them."""

FINETUNE_DEFAULTS = {"epochs": 3, "lr": 0.01, "batch_size": 32, "momentum": 0.9, "weight_decay": 1e-4}
TSN_DEFAULTS = {"lr": 2e-4, "epochs": 3, "batch_size": 32, "num_convs": 3}  # Table 9 learning rate
TEMPERATURE = {"flow": 2.0, "dynamic": 10.0}  # Table 9
TARGET_MODES = ("live", "cached", "labels")  # labels: no teacher, one-hot targets (heads.finetune.tsn)
PAIRINGS = ("co-class", "instance")  # co-class: the paper's (Remark 2); instance: each still with its own video
