"""The demos (MNIST ablation, sparse l0) and the sweep driver."""
