"""Physics oracles: expensive simulations that judge a candidate (relaxation
with a universal interatomic potential), kept apart from the cheap computed
descriptors of :mod:`molgen.properties` and the learned models of
:mod:`molgen.predictors`."""
