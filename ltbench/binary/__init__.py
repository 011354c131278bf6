"""Binary layers (sign with straight-through estimators, RSign, RPReLU) and XNOR-popcount kernels.

Convention everywhere: sign(0) = +1 and bit 1 ⇔ −1 (so a packed bit is ``x < 0``; −0.0 and NaN give +1).
"""
