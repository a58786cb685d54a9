"""The data sets: torchvision's and on-disk trees, and generated data (registered in mmengine)."""
