"""Tutorial 5: the other two sequence backbones. Train a VAE and a masked
diffusion model on the same molecules, compare their samples, reconstruct and
interpolate with the VAE, and optimise QED in its latent space under a counted
oracle budget.

Run it as a script (about ten minutes on a laptop CPU with the defaults):

    .venv/bin/python tutorials/05_vae_diffusion_latent_optimization.py

The same training from the command line, for any token domain:

    molgen train --backbone vae --data nci-5k --max-minutes 5 --out runs/vae
    molgen train --backbone masked-diffusion --domain protein --data amp-positive-train --out runs/md
    molgen train --backbone masked-diffusion --domain selfies --data nci-5k --max-minutes 5 --out runs/md-selfies
    molgen sample runs/vae -n 1000 -o runs/vae/samples.smi

Environment knobs (the test suite uses tiny values):
    MOLGEN_TUTORIAL_STEPS    training steps per backbone (default 1500)
    MOLGEN_TUTORIAL_SAMPLES  molecules sampled (default 500)
    MOLGEN_TUTORIAL_OUT      output directory (default runs/tutorial-05)
"""

import os
from pathlib import Path

from molgen.backbones import Generator
from molgen.datasets import load_texts
from molgen.domains import SmilesDomain
from molgen.loops import optimize_latent
from molgen.scoring import Oracle, get_objective
from molgen.workflows import RunConfig, run_training

steps = max(int(os.environ.get("MOLGEN_TUTORIAL_STEPS", 1500)), 1)
n_samples = max(int(os.environ.get("MOLGEN_TUTORIAL_SAMPLES", 500)), 4)
out = Path(os.environ.get("MOLGEN_TUTORIAL_OUT", "runs/tutorial-05"))
tiny = steps < 50
smiles = SmilesDomain()

# 1. One run config, three backbones: only `backbone` and its hyper-parameters change.
models = {}
for backbone, extra in {
    "vae": {"latent_dim": 32, "kl_warmup_steps": max(steps // 3, 1)},
    "masked-diffusion": {"sampling_steps": 64},
}.items():
    config = RunConfig.model_validate({
        "backbone": backbone, "seed": 0,
        "data": {"source": "nci-5k", "limit": 200 if tiny else 3000},
        "model": {"d_model": 32 if tiny else 128, "n_layers": 1 if tiny else 4, "n_heads": 4, "max_length": 96, **extra},
        "train": {"batch_size": 16 if tiny else 64, "lr": 2e-3, "max_steps": steps,
                  "warmup_steps": min(100, steps), "progress": False},
    })
    summary = run_training(config, out / backbone)
    models[backbone] = Generator.from_pretrained(summary.model_dir)
    print(f"{backbone}: {summary.n_parameters:,} parameters, validation loss {summary.result.val_loss:.3f} nats/token")

# 2. Sample both; masked diffusion trades steps for quality.
for name, model in models.items():
    kwargs = {"steps": 16} if name == "masked-diffusion" else {}
    samples = model.sample(n_samples, seed=0, **kwargs)
    print(f"{name}: validity {sum(m is not None for m in samples) / len(samples):.2f}")

# 2b. Masked diffusion fills all positions at once, so on SMILES its samples often leave a
#     ring or branch unclosed. On SELFIES (`"domain": "selfies"`, read from the same SMILES
#     data) every symbol sequence decodes to a molecule; the question becomes whether the
#     molecules look like the data, which the MOSES metrics (FCD) answer.
config = RunConfig.model_validate({
    "domain": "selfies", "backbone": "masked-diffusion", "seed": 0,
    "data": {"source": "nci-5k", "limit": 200 if tiny else 3000},
    "model": {"d_model": 32 if tiny else 128, "n_layers": 1 if tiny else 4, "n_heads": 4, "max_length": 96,
              "sampling_steps": 64},
    "train": {"batch_size": 16 if tiny else 64, "lr": 2e-3, "max_steps": steps, "warmup_steps": min(100, steps),
              "progress": False},
})
selfies_md = Generator.from_pretrained(run_training(config, out / "masked-diffusion-selfies").model_dir)
samples = selfies_md.sample(n_samples, seed=0, steps=16)
print(f"masked-diffusion on SELFIES: validity {sum(m is not None for m in samples) / len(samples):.2f}, "
      f"e.g. {[selfies_md.domain.export(m) for m in samples if m is not None][:3]}")

# 3. The VAE's latent space: encode, decode, interpolate.
vae = models["vae"]
# The training subset (same source, size and seed as the run), so every token is in the vocabulary.
molecules = load_texts("nci-5k", smiles, limit=200 if tiny else 3000, seed=0, canonicalize=True).texts[:50]
mean, log_var = vae.encode(molecules[:8])
decoded = vae.decode(mean)  # greedy decoding of the posterior means
hits = sum(smiles.try_parse(d) is not None and smiles.key(smiles.parse(d)) == smiles.key(smiles.parse(m))
           for d, m in zip(decoded, molecules[:8]))
print(f"reconstructed {hits} of 8 held-in molecules exactly")
for text in vae.interpolate(molecules[0], molecules[1], steps=5):
    print("  path:", text, "(valid)" if smiles.try_parse(text) is not None else "(invalid)")
print("ELBO and 16-sample importance-weighted bound (nats):",
      vae.log_likelihood(vae.make_batch(molecules[:2])).tolist(),
      vae.log_likelihood(vae.make_batch(molecules[:2]), samples=16).tolist())

# 4. Latent optimisation: raise QED from a poor start set; every unique
#    molecule scored counts against the oracle budget.
qed = get_objective("qed")
start = sorted(molecules, key=lambda s: qed([smiles.parse(s)]).total[0])[:10]
for method in ("cmaes", "gradient"):
    oracle = Oracle(qed, smiles, budget=30 if tiny else 300)
    result = optimize_latent(vae, oracle, start, method=method, population=8 if tiny else 32, seed=0)
    print(f"{method}: start best QED {result.start_best:.3f} -> {result.best[0][1]:.3f} "
          f"({result.best[0][0]}) with {result.oracle_calls} oracle calls")
