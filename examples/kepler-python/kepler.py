"""Kepler's third law as an Orrery python servable (numpy only).

    T = 2 pi sqrt(a^3 / (G M))

a is the semi-major axis in astronomical units, M the mass of the central body
(strictly, the sum of both masses) in nominal solar masses, T the orbital period
in days. Constants: au = 149 597 870 700 m exactly (IAU 2012 Resolution B2);
nominal solar mass parameter GM = 1.3271244e20 m^3 s^-2 (IAU 2015 Resolution
B3); day = 86 400 s.

Contract: predict(inputs) takes a dict of numpy arrays keyed by the signature's
input names and returns a dict keyed by its output names.
"""

import numpy as np

AU_M = 149597870700.0
GM_SUN_M3_S2 = 1.3271244e20
DAY_S = 86400.0


def period_days(semi_major_axis_au, central_mass_msun):
    a = np.asarray(semi_major_axis_au, dtype=np.float64) * AU_M
    gm = np.asarray(central_mass_msun, dtype=np.float64) * GM_SUN_M3_S2
    return 2.0 * np.pi * np.sqrt(a ** 3 / gm) / DAY_S


def predict(inputs):
    """inputs: semi_major_axis_au, central_mass_msun, FP64 [batch] (same shape).

    Returns {"period_days": FP64 [batch]}.
    """
    a = np.asarray(inputs["semi_major_axis_au"], dtype=np.float64)
    m = np.asarray(inputs["central_mass_msun"], dtype=np.float64)
    if a.shape != m.shape:
        raise ValueError("semi_major_axis_au and central_mass_msun must have the same shape, "
                         "got %s and %s" % (list(a.shape), list(m.shape)))
    if np.any(a <= 0) or np.any(m <= 0):
        raise ValueError("semi_major_axis_au and central_mass_msun must be positive")
    return {"period_days": period_days(a, m)}
