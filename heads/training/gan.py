"""The GAN head (paper section 3.1): generator + discriminator on still features, L_gan + lambda L_aux
with the frozen dim-reduction classifier as the auxiliary classifier, RMSProp. ``d_norm`` says how D's
batch norm sees the real and generated rows (:mod:`heads.models.discriminator`); each epoch records D's
accuracy on the real and the generated rows of its steps (``d_acc_real``, ``d_acc_fake``)."""

from __future__ import annotations

import torch
from torch import nn

from heads.losses.gan_losses import discriminator_loss, generator_losses
from heads.models.discriminator import NORMS, Discriminator
from heads.models.dim_reduction_network import DimReductionNetwork
from heads.models.generator import Generator
from heads.nn.member_random import MemberRandom, member_generators
from heads.optim.stacked_rmsprop import StackedRMSProp
from heads.training.config import PAPER_STILLS, epoch_passes, min_steps_at_paper_size
from heads.training.dim_reduction import DimRedParts
from heads.training.head_data import HeadData
from heads.training.loop import BestKeeper, Phases, batch_starts, predict, take
from heads.training.predictor import DerivedPredictor, loaded, member_random
from heads.training.registry import HeadMethod, register_head_method
from heads.training.selection import train_selected
from heads.training.settings import Key, non_negative_float, positive_int
from heads.training.still_model import StillStream


def train_gan_epoch(generator, discriminator, aux, opt_g, opt_d, still_x, still_y, compact, owner,
                    lambdas, batch_size, rng, pair=None) -> dict[str, torch.Tensor]:
    """One pass over the still train rows. D step: real compact temporal features vs
    generated ones; G step: non-saturating L_gan + lambda * L_aux with the frozen auxiliary
    classifier (the usual form of the min-max of eq. 3). The real rows are random temporal train
    rows, or ``pair(labels [G, B], index [G, B])``'s (``pairing=instance``: the stills' own videos)."""
    generator.train()
    discriminator.train()
    members, rows = len(rng), still_y.shape[0]
    order = rng.randperm(rows)
    sums = {name: torch.zeros(members) for name in ("loss_d", "loss_g", "loss_aux", "d_acc_real", "d_acc_fake")}
    steps = 0
    for start in batch_starts(rows, batch_size):
        index = order[:, start : start + batch_size]
        x, y = take(still_x, index), take(still_y, index)
        partners = rng.randint(compact.shape[1], index.shape[1]) if pair is None else pair(y, index)
        real = take(compact, partners, owner)
        fake = generator(x)
        real_logits, fake_logits = discriminator.score(real, fake.detach())
        loss_d = discriminator_loss(real_logits, fake_logits)
        opt_d.zero_grad()
        loss_d.sum().backward()
        opt_d.step()
        discriminator.requires_grad_(False)  # the G step needs gradients through D, not for D
        loss_gan, loss_aux = generator_losses(discriminator.score(real, fake)[1], aux(fake), y)
        opt_g.zero_grad()
        (loss_gan + lambdas * loss_aux).sum().backward()
        opt_g.step()
        discriminator.requires_grad_(True)
        accuracies = ((real_logits > 0).float().mean(-1) * 100, (fake_logits < 0).float().mean(-1) * 100)
        for name, value in zip(sums, (loss_d, loss_gan, loss_aux, *accuracies)):
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
    discriminator = Discriminator(members, first["d1"], first["d2"], init, first["d_norm"]).to(device)
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
    pair = None
    if first["pairing"] == "instance":  # D is unconditional: this changes which real rows a batch holds
        sampler, generators = data.instance_sampler(), member_generators(seeds, "gan-pairs")
        pair = lambda y, index: torch.stack([sampler(y[g], index[g], generators[g]) for g in range(members)]).to(device)  # noqa: E731
    derived = train_selected(
        lambda: train_gan_epoch(generator, discriminator, aux, opt_g, opt_d, still_x, still_y,
                                dimred.compact_train, dimred.owner, lambdas, first["batch_size"], rng, pair),
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


# Table 6 (identical for both modalities). 6 epochs, not 10: at the paper's size val keeps epoch 4 of 10 (fused val
# 83.2-84.6% throughout, constant learning rate), so 6 give the same generator in 60% of the time.
GAN = register_head_method(HeadMethod(
    name="gan", fit=fit_gan, help="adversarial (3.1)", label="GAN", load_predictor=load_gan_predictor,
    defaults={"d0": 256, "d1": 128, "d2": 256, "d_norm": "joint", "lambda": 1.0, "lr": 1e-3, "epochs": 6,
              "batch_size": 128, "min_steps": min_steps_at_paper_size(6, PAPER_STILLS, 128), "dropout": 0.5,
              "noise": 0.01, "select": "fused", "pairing": "co-class"},
    keys=(positive_int("d2", shape=True), non_negative_float("lambda"),
          Key("d_norm", str, choices=NORMS, shape=True)),
))
