"""Staging models: one spec per bronze table (``specs/stg_<department>__<asset>.yaml``, format in
:mod:`models.staging.spec`) and the engine that applies it (:mod:`models.staging.stage`)."""
