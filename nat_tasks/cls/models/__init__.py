"""The networks: ``Classifier`` (images in [0, 1], normalised inside), the architectures, RobustBench definitions, weights."""
