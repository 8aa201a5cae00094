"""The GAN head (paper section 3.1): generator + discriminator on still features, L_gan + lambda L_aux
with the frozen dim-reduction classifier as the auxiliary classifier, RMSProp."""

from __future__ import annotations

import torch
from torch import nn

from heads.losses.gan_losses import discriminator_loss, generator_losses
from heads.models.discriminator import Discriminator
from heads.models.dim_reduction_network import DimReductionNetwork
from heads.models.generator import Generator
from heads.nn.member_random import MemberRandom
from heads.optim.stacked_rmsprop import StackedRMSProp
from heads.training.config import PAPER_STILLS, epoch_passes, min_steps_at_paper_size
from heads.training.dim_reduction import DimRedParts
from heads.training.head_data import HeadData
from heads.training.loop import BestKeeper, Phases, batch_starts, predict, take
from heads.training.predictor import DerivedPredictor, loaded, member_random
from heads.training.registry import HeadMethod, register_head_method
from heads.training.selection import train_selected
from heads.training.settings import non_negative_float, positive_int
from heads.training.still_model import StillStream


def train_gan_epoch(generator, discriminator, aux, opt_g, opt_d, still_x, still_y, compact, owner,
                    lambdas, batch_size, rng) -> dict[str, torch.Tensor]:
    """One pass over the still train rows. D step: real compact temporal features vs
    generated ones; G step: non-saturating L_gan + lambda * L_aux with the frozen auxiliary
    classifier (the usual form of the min-max of eq. 3)."""
    generator.train()
    discriminator.train()
    members, rows = len(rng), still_y.shape[0]
    order = rng.randperm(rows)
    sums = {"loss_d": torch.zeros(members), "loss_g": torch.zeros(members), "loss_aux": torch.zeros(members)}
    steps = 0
    for start in batch_starts(rows, batch_size):
        index = order[:, start : start + batch_size]
        x, y = take(still_x, index), take(still_y, index)
        real = take(compact, rng.randint(compact.shape[1], index.shape[1]), owner)
        fake = generator(x)
        loss_d = discriminator_loss(discriminator(real), discriminator(fake.detach()))
        opt_d.zero_grad()
        loss_d.sum().backward()
        opt_d.step()
        discriminator.requires_grad_(False)  # the G step needs gradients through D, not for D
        loss_gan, loss_aux = generator_losses(discriminator(fake), aux(fake), y)
        opt_g.zero_grad()
        (loss_gan + lambdas * loss_aux).sum().backward()
        opt_g.step()
        discriminator.requires_grad_(True)
        for name, value in (("loss_d", loss_d), ("loss_g", loss_gan), ("loss_aux", loss_aux)):
            sums[name] += value.detach().cpu()
        steps += 1
    return {name: value / steps for name, value in sums.items()}


def fit_gan(data: HeadData, configs, device, phases: Phases, still: StillStream, dimred: DimRedParts):
    members, first = len(configs), configs[0]
    seeds = [c["seed"] for c in configs]
    init = MemberRandom.from_seeds(seeds, "gan-init", device)
    rng = MemberRandom.from_seeds(seeds, "gan-train", device)
    generator = Generator(members, data.still_cache.feature_dim, first["d0"], first["d1"],
                          [c["dropout"] for c in configs], [c["noise"] for c in configs], init, rng).to(device)
    discriminator = Discriminator(members, first["d1"], first["d2"], init).to(device)
    lrs = [c["lr"] for c in configs]
    opt_g, opt_d = StackedRMSProp(generator.parameters(), lrs), StackedRMSProp(discriminator.parameters(), lrs)
    lambdas = torch.tensor([c["lambda"] for c in configs], device=device)
    aux = dimred.model.classifier

    def derive(x):
        generator.eval()
        return predict(lambda rows: aux(generator(rows)), x.to(device), members).softmax(-1)

    both = nn.ModuleDict({"generator": generator, "discriminator": discriminator})
    keeper = BestKeeper(both, members)
    train = data.still["train"]
    still_x, still_y = train.features.to(device), train.labels.to(device)
    epochs = first["epochs"]
    passes = epoch_passes(epochs, first["min_steps"], len(still_y), first["batch_size"], PAPER_STILLS)
    derived = train_selected(
        lambda: train_gan_epoch(generator, discriminator, aux, opt_g, opt_d, still_x, still_y,
                                dimred.compact_train, dimred.owner, lambdas, first["batch_size"], rng),
        derive, keeper, data, configs, still, epochs, phases.start("GAN", epochs), device,
        record=lambda e, values: phases.record("gan", e, {**values, "lr": opt_g.lr}), passes=passes,
    )
    parts = {"generator": generator, "discriminator": discriminator}
    return derived, parts, keeper.epoch.tolist()


def load_gan_predictor(checkpoint) -> DerivedPredictor:
    """The generator and the frozen auxiliary classifier (the dim-reduction network's last layer) of a ``model.pt``."""
    config, dims, state = checkpoint["config"], checkpoint["dims"], checkpoint["state"]
    rng = member_random(checkpoint)
    generator = Generator(1, dims["still"], config["d0"], config["d1"], [config["dropout"]], [config["noise"]], rng, rng)
    dimred = DimReductionNetwork(1, dims["temporal"], config["d1"], dims["classes"], [config["dimred_dropout"]], rng, rng)
    return DerivedPredictor(loaded(generator, state["generator"]), loaded(dimred, state["dimred"]).classifier)


# Table 6 (identical for both modalities).
GAN = register_head_method(HeadMethod(
    name="gan", fit=fit_gan, help="adversarial (3.1)", label="GAN", load_predictor=load_gan_predictor,
    defaults={"d0": 256, "d1": 128, "d2": 256, "lambda": 1.0, "lr": 1e-3, "epochs": 10, "batch_size": 128,
              "min_steps": min_steps_at_paper_size(10, PAPER_STILLS, 128), "dropout": 0.5, "noise": 0.01,
              "select": "fused"},
    keys=(positive_int("d2", shape=True), non_negative_float("lambda")),
))
