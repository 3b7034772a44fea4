"""Noise processes for diffusion backbones (masking, categorical, Gaussian,
wrapped normal). Imports torch, numpy and molgen.core only. The first process
lands with the diffusion backbones."""
