"""Systematic training data for the learned filter layer (see ``generate``).

Everything here is hand-written template families, translated into 14
languages, plus programmatic encodings; nothing comes from the evaluation
corpus under ``tests/filter/corpus``.
"""
