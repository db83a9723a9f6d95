"""RoTTA's category-balanced sampling with timeliness and uncertainty (CSTU): the memory bank its updates train on.

capacity C items, C/K per predicted class. Each item keeps its image, its uncertainty (the
teacher's entropy, with the 1e-6 of the official code) and its age (how many insertions ago it
arrived). Score of an item: lambda_t / (1 + exp(-age / C)) + lambda_u * entropy / ln K, higher
= staler and less certain. A new item (age 0) enters when its class has room and the memory
has room; when its class has room but the memory is full it replaces the highest-scoring item
of the fullest classes, when its class is full the highest-scoring item of its own class, in
both cases only if that item scores higher than the newcomer. Every insertion attempt ages all
items by one (the newcomer included). Ties go to the later item, as in the official code.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass
class Item:
    image: torch.Tensor
    uncertainty: float
    age: int = 0


class CategoryBalancedMemory:
    def __init__(self, capacity: int, num_classes: int, lambda_t: float = 1.0, lambda_u: float = 1.0):
        self.capacity, self.num_classes = capacity, num_classes
        self.per_class = capacity / num_classes
        self.lambda_t, self.lambda_u = lambda_t, lambda_u
        self.items: list[list[Item]] = [[] for _ in range(num_classes)]

    def __len__(self) -> int:
        return sum(len(c) for c in self.items)

    def score(self, age: int, uncertainty: float) -> float:
        return (self.lambda_t / (1 + math.exp(-age / self.capacity))
                + self.lambda_u * uncertainty / math.log(self.num_classes))

    def add(self, image: torch.Tensor, label: int, uncertainty: float) -> None:
        if self._make_room(label, self.score(0, uncertainty)):
            self.items[label].append(Item(image, uncertainty))
        for per_class in self.items:
            for item in per_class:
                item.age += 1

    def _make_room(self, label: int, new_score: float) -> bool:
        if len(self.items[label]) < self.per_class:
            if len(self) < self.capacity:
                return True
            sizes = [len(c) for c in self.items]
            return self._evict([k for k, s in enumerate(sizes) if s == max(sizes)], new_score)
        return self._evict([label], new_score)

    def _evict(self, classes: list[int], new_score: float) -> bool:
        best = None  # (score, class, index) of the stalest, least certain item
        for k in classes:
            for i, item in enumerate(self.items[k]):
                s = self.score(item.age, item.uncertainty)
                if best is None or s >= best[0]:
                    best = (s, k, i)
        if best is None:
            return True
        if best[0] > new_score:
            self.items[best[1]].pop(best[2])
            return True
        return False

    def contents(self) -> tuple[list[torch.Tensor], list[float]]:
        """The stored images and their ages as fractions of the capacity, class by class."""
        images = [item.image for per_class in self.items for item in per_class]
        ages = [item.age / self.capacity for per_class in self.items for item in per_class]
        return images, ages
