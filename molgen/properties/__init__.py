"""Object -> number: computed descriptors, physics oracles and learned predictors."""
