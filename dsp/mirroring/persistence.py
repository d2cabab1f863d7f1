"""A speaker's persistence: their values in time order read as AR(1) plus white
measurement noise (Whittle's likelihood), and what it implies for means of consecutive
values (window means)."""

from __future__ import annotations

import numpy as np

from dsp.mirroring.inputs import FloatArray


def block_corr(phi: float, k: float, share: float = 1.0) -> float:
    """Correlation of adjacent means of ``k`` consecutive values of an AR(1) with ``phi``
    plus white measurement noise, the AR(1) part carrying ``share`` of the variance (the
    noise averages out within a window mean and lowers the correlation of adjacent ones)."""
    kk = max(1, int(round(k)))
    i = np.arange(kk)
    lag = i[None, :] - i[:, None]
    within = share * float(np.sum(phi ** np.abs(lag))) + (1.0 - share) * kk
    across = share * float(np.sum(phi ** np.abs(lag + kk)))
    return across / within if within > 0 else 0.0


#: Grids of the AR(1) coefficient and of the AR(1) share of the variance searched by
#: :func:`whittle_log_lik` (finer near 1, where window-level persistence changes fast).
_WHITTLE_PHI = np.concatenate([np.linspace(0.0, 0.9, 46), np.linspace(0.905, 0.995, 19)])
_WHITTLE_SIGNAL_SHARE = np.linspace(0.05, 1.0, 20)


#: A speaker's persistence is used only when AR(1) plus noise fits the detrended values
#: better than white noise by this much (twice the log-likelihood gain; chi-square with 2
#: degrees of freedom, 95 %): with a few dozen values Whittle's fit otherwise reads the
#: chance shape of the lowest frequencies as slow wandering and buries a real trend.
PERSISTENCE_LR = 5.99


def whittle_log_lik(v: FloatArray) -> FloatArray:
    """Whittle log-likelihood of ``v`` (mean removed) over the (phi, share) grid, the scale
    profiled out."""
    n = v.size
    periodogram = np.abs(np.fft.rfft(v - v.mean())[1 : (n + 1) // 2]) ** 2 / n
    cos_w = np.cos(2.0 * np.pi * np.arange(1, periodogram.size + 1) / n)
    phi = _WHITTLE_PHI[:, None, None]
    share = _WHITTLE_SIGNAL_SHARE[None, :, None]
    spectrum = share * (1.0 - phi**2) / (1.0 - 2.0 * phi * cos_w + phi**2) + (1.0 - share)
    scale = np.mean(periodogram / spectrum, axis=-1)
    return np.asarray(
        -periodogram.size * np.log(scale) - np.sum(np.log(spectrum), axis=-1), dtype=np.float64
    )


def best_fit(log_lik: FloatArray) -> tuple[float, float]:
    """The grid's best (phi, share), or white noise ``(0, 1)`` unless it beats white noise
    by :data:`PERSISTENCE_LR`."""
    best, best_share = np.unravel_index(int(np.argmax(log_lik)), log_lik.shape)
    white = log_lik[0, -1]  # phi = 0: a flat spectrum whatever the share
    if 2.0 * float(log_lik[best, best_share] - white) < PERSISTENCE_LR:
        return 0.0, 1.0
    return float(_WHITTLE_PHI[best]), float(_WHITTLE_SIGNAL_SHARE[best_share])


def debiased(phi: float, n: int) -> float:
    """``phi`` fitted on ``n`` linearly detrended values, bias-corrected: ``phi + (2 + 4 phi)
    / n`` (the first-order bias of an AR(1) estimate after removing a line; ``(1 + 3 phi)
    / n`` is the mean-only one), capped at 0.995; white noise stays white."""
    return min(phi + (2.0 + 4.0 * phi) / n, 0.995) if phi > 0.0 else 0.0
