"""Differential-privacy mode: the synthesizer fitted from noisy sufficient statistics.

``measure`` takes the only look at the microdata (opendp Gaussian mechanisms under zCDP),
``ledger`` composes and converts the budget, ``fit`` builds the partial-pooling model from the
noisy statistics alone and samples records from it. Method and limits: docs/privacy.md.
"""
