"""Methods that only change how the normalisation layers normalise (no gradient step): BatchNorm on
the test batch's statistics, mixed with the source's (alpha-BN, MEMO's prior BN), robust running
statistics (RoTTA's RBN), mixtures of statistics (UnMix-TNS); and which layers gradient methods adapt.

The gradient methods in `methods.tta` build on these layers.
"""
