#!/usr/bin/python3
"""Writes the small TorchScript modules used by torchscript_test.cc.

Run with Debian's interpreter from this directory: /usr/bin/python3 make_testdata.py
The files are committed; rerun only to change them.
"""
from typing import Dict, List, Tuple

import torch


class Identity(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.clone()


class Double(torch.nn.Module):
    """Returns float64 whatever it gets: the backend converts to the signature's type."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.to(torch.float64) * 2


class TwoInTuple(torch.nn.Module):
    def forward(self, a: torch.Tensor, b: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        return a + b, a * b


class ListOut(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        return [x + 1, x - 1]


class DictOut(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        return {"twice": x * 2, "total": x.sum(dim=1)}


class Linear4x2(torch.nn.Module):
    """Rejects inputs whose last dimension is not 4 (matmul shape error)."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(4, 2))
        self.register_buffer("bias", torch.zeros(2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.weight + self.bias


class ReturnsInt(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> int:
        return x.size(0)


def main():
    torch.manual_seed(0)
    for name, module in [("identity", Identity()), ("double", Double()),
                         ("two_in_tuple", TwoInTuple()), ("list_out", ListOut()),
                         ("dict_out", DictOut()), ("linear4x2", Linear4x2()),
                         ("returns_int", ReturnsInt())]:
        torch.jit.save(torch.jit.script(module), name + ".pt")


if __name__ == "__main__":
    main()
