import pytest
import torch

from mnist_lightning import MyMNIST


@pytest.mark.parametrize("shape", [(5, 784), (5, 28, 28), (5, 1, 28, 28)])
def test_accepts_flat_and_image_shapes(shape: tuple[int, ...]) -> None:
    net = MyMNIST([256, 32])
    assert net(torch.rand(shape)).shape == (5, 10)


@pytest.mark.parametrize("hidden", [None, []])
def test_no_hidden_layer_is_a_single_linear(hidden: list[int] | None) -> None:
    net = MyMNIST(hidden)
    linears = [m for m in net.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(784, 10)]
    assert net(torch.rand(3, 784)).shape == (3, 10)


def test_hidden_layers_are_linear_gelu_pairs() -> None:
    net = MyMNIST([256, 32])
    kinds = [type(m).__name__ for m in net.layers]
    assert kinds == ["Linear", "GELU", "Linear", "GELU", "Linear"]
    assert sum(p.numel() for p in net.parameters()) == 784 * 256 + 256 + 256 * 32 + 32 + 32 * 10 + 10
