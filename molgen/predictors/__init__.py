"""Learned property models: ``objects -> (mean, std)`` with fit, predict,
save and load.

* :mod:`~molgen.predictors.base`: the deep-ensemble :class:`Predictor` contract;
* :mod:`~molgen.predictors.metrics`: RMSE, MAE, ROC-AUC and calibration;
* :mod:`~molgen.predictors.registry`: the registries and :func:`load_predictor`,
  which reads any saved predictor by its saved kind;
* families: :mod:`~molgen.predictors.molecules` (fingerprint MLP, D-MPNN, with
  :mod:`~molgen.predictors.mol_features`), :mod:`~molgen.predictors.crystals`
  (CGCNN, two-stage band gaps) and :mod:`~molgen.predictors.peptides` (the
  antimicrobial-peptide classifier).

Shipped weights live under :mod:`molgen.pretrained.predictors`.
"""
