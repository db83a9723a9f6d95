"""Class discovery under latent label shift: classes are found, not given (DDFA, its baselines, and the
Hungarian matching that scores discovered clusters against the true classes)."""
