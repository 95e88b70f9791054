"""Weighted generalised linear fits with a per-row offset, for the fixed part of each
conditional model (the cell part is the offset, fitted by :mod:`pooling`).

Estimator: design-weighted pseudo-likelihood (the caller passes weights scaled to sum, in
each cell, to the cell's Kish effective n, so the information matrix, and therefore the
posterior spread drawn for each implicate, reflects effective sample sizes rather than
population counts), with a
ridge penalty of ``ridge`` pseudo-observations on every slope (features are standardised),
which keeps the fit finite under separation (a structural zero) and in small samples. The
logit intercept has a weak proper prior (sd about 3 around the logit of the overall rate),
so a rare or separated event cannot send it, or its posterior draws, to infinity. The returned covariance is the inverse penalised information,
the Gaussian (Laplace) approximation of the slopes' posterior under that ridge prior.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit

RIDGE = 1.0


@dataclass
class GLMFit:
    coef: np.ndarray  # intercept first
    cov: np.ndarray
    scale: float = 1.0  # residual variance (gaussian); 1 for logit


def _with_intercept(X: np.ndarray) -> np.ndarray:
    return np.column_stack([np.ones(len(X)), X])


INTERCEPT_RIDGE = 0.1  # a N(centre, 10) prior on the intercept: weak, but proper
MAX_STEP = 4.0  # Newton steps are capped (on the logit scale) so separation cannot run away


def _penalty(p: int, ridge: float, intercept: float = 1e-4) -> np.ndarray:
    pen = np.full(p + 1, ridge)
    pen[0] = intercept
    return np.diag(pen)


def fit_logit(
    X: np.ndarray,
    y: np.ndarray,
    w: np.ndarray,
    offset: np.ndarray,
    start: np.ndarray | None = None,
    ridge: float = RIDGE,
    iters: int = 25,
) -> GLMFit:
    """Weighted ridge logistic regression by Newton-Raphson (IRLS)."""
    A = _with_intercept(X)
    wk = w
    P = _penalty(X.shape[1], ridge, INTERCEPT_RIDGE)
    p0 = float(np.clip(np.average(y, weights=wk), 1e-4, 1 - 1e-4))
    prior = np.zeros(A.shape[1])
    prior[0] = np.log(p0 / (1 - p0)) - float(np.average(offset, weights=wk))
    b = prior.copy() if start is None else start.copy()
    for _ in range(iters):
        mu = expit(offset + A @ b)
        v = np.maximum(mu * (1 - mu), 1e-10)
        H = (A * (wk * v)[:, None]).T @ A + P
        grad = A.T @ (wk * (y - mu)) - P @ (b - prior)
        step = np.linalg.solve(H, grad)
        big = np.abs(step).max(initial=0.0)
        if big > MAX_STEP:
            step = step * (MAX_STEP / big)
        b = b + step
        if big < 1e-6:
            break
    mu = expit(offset + A @ b)
    H = (A * (wk * np.maximum(mu * (1 - mu), 1e-10))[:, None]).T @ A + P
    return GLMFit(b, np.linalg.inv(H))


def fit_gauss(
    X: np.ndarray, y: np.ndarray, w: np.ndarray, offset: np.ndarray, ridge: float = RIDGE
) -> GLMFit:
    """Weighted ridge least squares of y - offset on X."""
    A = _with_intercept(X)
    wk = w
    P = _penalty(X.shape[1], ridge)
    r = y - offset
    H = (A * wk[:, None]).T @ A
    b = np.linalg.solve(H + P, A.T @ (wk * r))
    res = r - A @ b
    dof = max(float(wk.sum()) - A.shape[1], 1.0)
    s2 = float((wk * res * res).sum()) / dof
    return GLMFit(b, s2 * np.linalg.inv(H + P), s2)


def linear_predictor(X: np.ndarray, coef: np.ndarray) -> np.ndarray:
    """coef[0] + X @ coef[1:], summed column by column in a fixed order (elementwise per
    row, so a row's value does not depend on which other rows are in the batch)."""
    out = np.full(len(X), float(coef[0]))
    for k in range(X.shape[1]):
        out = out + coef[k + 1] * X[:, k]
    return out
