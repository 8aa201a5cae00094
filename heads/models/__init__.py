"""The networks of the heads: classifiers, dimension reduction, mapping/generator/embedding nets, the discriminator."""
