from setuptools import find_packages, setup

setup(
    name="nat_tasks",
    version="0.1.0",
    description="Nasty adversarial training for classification, detection (MMDetection) and re-ID (torchreid)",
    packages=find_packages(include=["nat_tasks", "nat_tasks.*"]),
    python_requires=">=3.10",
    install_requires=[
        "torch", "torchvision", "mmengine==0.10.7", "mmcv==2.1.0", "mmdet==3.3.0",
        "torchreid==0.2.5", "faiss-cpu", "pyautoattack", "mlxtend", "matplotlib", "scipy", "tqdm",
    ],
)
