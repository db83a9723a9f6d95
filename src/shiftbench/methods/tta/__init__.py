"""Test-time adaptation that learns from the unlabelled test stream: entropy and consistency losses
with a gradient step (TENT, EATA, SAR, CoTTA, DeYO, RoTTA, MEMO, SHOT-IM), and output-side
adjustment (T3A, LAME), with the augmentations and memories they use.
"""
