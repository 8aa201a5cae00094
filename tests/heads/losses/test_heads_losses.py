"""GAN and embedding losses on hand-made tensors."""

import math

import torch

from heads.losses.gan_losses import discriminator_loss, generator_losses
from heads.training.selection import selection_scores
from heads.training.still_model import StillStream
from heads.losses.triplet_margin_loss import TripletMarginLoss


def test_discriminator_loss_is_the_gan_objective_per_member():
    real = torch.tensor([[0.0, 2.0], [1.0, -1.0]])  # logits, member x batch
    fake = torch.tensor([[0.0, -3.0], [0.5, 0.5]])
    sig = torch.sigmoid
    expected = [
        -(math.log(sig(real[g]).tolist()[0]) + math.log(sig(real[g]).tolist()[1])) / 2
        - (math.log(1 - sig(fake[g]).tolist()[0]) + math.log(1 - sig(fake[g]).tolist()[1])) / 2
        for g in range(2)
    ]
    torch.testing.assert_close(discriminator_loss(real, fake), torch.tensor(expected), atol=1e-5, rtol=1e-5)


def test_generator_losses_adversarial_and_auxiliary():
    fake = torch.tensor([[0.0, 0.0], [10.0, 10.0]])
    aux_logits = torch.tensor([
        [[2.0, 0.0, 0.0], [0.0, 0.0, 0.0]],
        [[0.0, 5.0, 0.0], [0.0, 0.0, 5.0]],
    ])
    labels = torch.tensor([[0, 1], [1, 2]])
    gan, aux = generator_losses(fake, aux_logits, labels)
    torch.testing.assert_close(gan, torch.tensor([math.log(2.0), math.log1p(math.exp(-10.0))]))
    member0 = (-math.log(math.exp(2) / (math.exp(2) + 2)) - math.log(1 / 3)) / 2
    member1 = -math.log(math.exp(5) / (math.exp(5) + 2))
    torch.testing.assert_close(aux, torch.tensor([member0, member1]))


def test_triplet_loss_with_a_margin_per_member():
    anchors = torch.tensor([[[0.0, 0.0]], [[0.0, 0.0]]])
    positives = torch.tensor([[[1.0, 0.0]], [[3.0, 4.0]]])  # d+ = 1 and 5
    negatives = torch.tensor([[[0.0, 2.0]], [[0.0, 5.5]]])  # d- = 2 and 5.5
    loss = TripletMarginLoss(torch.tensor([1.0, 0.5]), reduction="member_mean")
    # member 0: [1 - 2 + 1]+ = 0; member 1: [5 - 5.5 + 0.5]+ = 0 -> both exactly on the margin
    torch.testing.assert_close(loss(anchors, positives, negatives), torch.tensor([0.0, 0.0]))
    loss = TripletMarginLoss(torch.tensor([1.5, 2.0]), reduction="member_mean")
    torch.testing.assert_close(loss(anchors, positives, negatives), torch.tensor([0.5, 1.5]))


def test_selection_uses_fused_or_derived_val_accuracy_per_member():
    labels = torch.tensor([0, 1])
    still = torch.tensor([[0.9, 0.1], [0.6, 0.4]])  # right, wrong
    derived = torch.tensor([[0.3, 0.7], [0.1, 0.9]])  # wrong, right
    # fused: [0.6, 0.4] right, [0.35, 0.65] right -> 100 %; derived alone 50 %
    stream = StillStream("linear", {"val": torch.stack([still, still]), "test": None}, [{}, {}], [0, 0], ["trained"] * 2)
    scores = selection_scores(stream, torch.stack([derived, derived]), labels,
                              [{"select": "fused"}, {"select": "derived"}])
    torch.testing.assert_close(scores, torch.tensor([100.0 + 50e-4, 50.0 + 100e-4]))
