"""What every stage stands on: errors, hashing, parameter checks, paths, config files, ImageSet."""
