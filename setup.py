from setuptools import find_packages, setup

setup(
    name="nat_tasks",
    version="0.1.0",
    description="Nasty adversarial training for classification, detection (MMDetection) and re-ID (torchreid)",
    packages=find_packages(include=["nat_tasks", "nat_tasks.*"]),
    python_requires=">=3.10",
    # classification; detection and re-ID are extras (scripts/bootstrap.sh's stages, requirements-*.txt)
    install_requires=[
        "torch", "torchvision", "mmengine==0.10.7", "pyautoattack", "mlxtend", "matplotlib", "scipy", "tqdm",
        "umap-learn", "tensorboard",
    ],
    extras_require={"det": ["mmcv==2.1.0", "mmdet==3.3.0"], "reid": ["torchreid==0.2.5"]},
)
