"""The GAN's discriminator learns: trained by the head's own epoch (``train_gan_epoch``), it tells
real compact features from generated ones, and the generator trained against it moves toward the real
features. With D's batch norm run per batch (``d_norm=separate``, as first built), it stays at chance."""

from __future__ import annotations

import math

import pytest
import torch

from heads.evaluation.two_sample import mmd_rbf
from heads.models.discriminator import Discriminator
from heads.models.generator import Generator
from heads.models.linear_classifier import LinearClassifier
from heads.nn.member_random import MemberRandom
from heads.optim.stacked_rmsprop import StackedRMSProp
from heads.training.methods import default_config
from heads.training.gan import train_gan_epoch

CHANCE = 2 * math.log(2)
STILL_DIM, D1, WIDTH, CLASSES, ROWS = 16, 8, 32, 3, 512


def setting(d_norm: str, generator_lr: float):
    """One member: a generator of 8-d features ~N(0, 1) at the start (its last layer is a batch norm);
    the real ones ~N(0.5, 0.5^2) in each dimension."""
    torch.manual_seed(0)
    init, rng = MemberRandom.from_seeds([0], "init", "cpu"), MemberRandom.from_seeds([0], "train", "cpu")
    generator = Generator(1, STILL_DIM, WIDTH, D1, [0.0], [0.0], init, rng)
    discriminator = Discriminator(1, D1, WIDTH, init, d_norm)
    aux = LinearClassifier(1, D1, CLASSES, init).requires_grad_(False)
    still_x = torch.randn(ROWS, STILL_DIM)
    still_y = torch.randint(0, CLASSES, (ROWS,))
    real = 0.5 + 0.5 * torch.randn(1, 2 * ROWS, D1)
    opt_g = StackedRMSProp(generator.parameters(), [generator_lr])
    opt_d = StackedRMSProp(discriminator.parameters(), [1e-3])
    return generator, discriminator, aux, opt_g, opt_d, still_x, still_y, real, rng


def train(parts, epochs: int) -> list[dict]:
    generator, discriminator, aux, opt_g, opt_d, still_x, still_y, real, rng = parts
    lambdas = torch.zeros(1)  # L_gan alone moves the generator
    return [train_gan_epoch(generator, discriminator, aux, opt_g, opt_d, still_x, still_y, real,
                            torch.zeros(1, dtype=torch.long), lambdas, 64, rng) for _ in range(epochs)]


def distance(parts) -> float:
    """Squared MMD of the generated rows (batch statistics, as in training) and as many real ones."""
    generator, real, still_x = parts[0], parts[7], parts[5]
    with torch.no_grad():
        fake = generator(still_x.unsqueeze(0))[0]
    return mmd_rbf(fake, real[0, : len(fake)])


def test_discriminator_separates_two_distributions_that_differ():
    parts = setting(default_config("gan", "flow")["d_norm"], generator_lr=1e-12)  # G all but frozen
    epochs = train(parts, 15)
    last = epochs[-1]
    assert float(last["loss_d"]) < 0.5 * CHANCE
    assert float(last["d_acc_real"]) > 90 and float(last["d_acc_fake"]) > 90


def test_generator_moves_toward_the_real_features():
    parts = setting(default_config("gan", "flow")["d_norm"], generator_lr=1e-3)
    before = distance(parts)
    train(parts, 40)
    after = distance(parts)
    assert after < 0.25 * before


def test_per_batch_normalisation_blinds_the_discriminator():
    """The diagnosis: each batch normalised by its own statistics hides their mean and spread."""
    parts = setting("separate", generator_lr=1e-12)
    last = train(parts, 15)[-1]
    assert abs(float(last["loss_d"]) - CHANCE) < 0.1


def test_discriminator_refuses_an_unknown_norm():
    with pytest.raises(ValueError, match="joint"):
        Discriminator(1, D1, WIDTH, MemberRandom.from_seeds([0], "init", "cpu"), "layer")
