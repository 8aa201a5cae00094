"""The embedding network f_e of the triplet solution: still features -> the fixed compact
temporal space (Table 7, same blocks as the GAN generator)."""

from heads.models.mapping_network import MappingNetwork


class EmbeddingNetwork(MappingNetwork):
    """(FC d0, LeakyReLU, BN, dropout, noise) x 2, FC d1, tanh, BN."""
