"""Methods that correct the predictions for a shifted label prior: the prior known (oracle), fixed
(logit adjustment) or estimated from the test stream (BBSE, RLLS, MLLS, online EM), and the label
shift adapter (LSA).

The estimators and calibration they use are the pure functions of `methods.labelshift`; a method
here is the streaming Method around them. adapter.py and adapter_training.py are LSA's network
and its (cached) training.
"""
