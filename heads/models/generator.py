"""The GAN generator f_g: still features -> generated compact temporal features (Table 5).

Its noise input z enters through the dropout and Gaussian-noise layers (section 5.1.1).
"""

from heads.models.mapping_network import MappingNetwork


class Generator(MappingNetwork):
    """(FC d0, LeakyReLU, BN, dropout, noise) x 2, FC d1, tanh, BN."""
