"""molgen: generative design of molecules and materials.

Layers (imports point downward only): core -> domains / datasets / nn /
schedulers -> backbones -> train -> cli. See ``ARCHITECTURE.md`` in the shared
design notes and ``README.md``.
"""

__version__ = "0.1.0"
