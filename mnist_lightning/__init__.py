"""Train, inspect and ship an MNIST digit classifier with PyTorch Lightning."""

from mnist_lightning.data import MNISTDataModule
from mnist_lightning.model import MyMNIST
from mnist_lightning.module import MNISTClassifier

__all__ = ["MNISTClassifier", "MNISTDataModule", "MyMNIST"]
__version__ = "0.1.0"
