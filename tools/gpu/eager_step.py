#!/usr/bin/env python3
"""The baseline of tools/gpu/step_benchmark.cc: the same training step written as plain
PyTorch eager code, the way the papers' code is written, on the same device.

    python3 tools/gpu/eager_step.py --model resnet20 --image_size 32 --batch 128 --bits 4 --device cuda

The networks and quantizers mirror lib/models/resnet.cc and lib/quant/op_chain.cc: ResNet-20
(CIFAR, shortcut A) or ResNet-18 (ImageNet, projection shortcuts), conv -> BN [-> ReLU]
units; with --bits b < 32, every conv and the classifier have Lin weights per output channel
at b bits (IMPQ's quantizer), and every conv but the first, and the classifier, quantize
their input with PACT at b bits (alpha 6). One JSON line, the fields of step_benchmark's.
"""
import argparse
import json
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def lin_weight(w, bits):
    """Lin et al. (IMPQ's code): mid-rise levels over 2 max|w| per output channel; STE."""
    w2 = w.reshape(w.shape[0], -1)
    levels = 2.0 ** bits
    s = 2 * w2.detach().abs().amax(1, keepdim=True)
    s = torch.where(s > 0, s, torch.ones_like(s))
    index = torch.clamp(torch.round(w2.detach() / s * levels - 0.5), -levels / 2, levels / 2 - 1)
    q = (index + 0.5) / levels * s
    return (w2 + (q - w2).detach()).reshape(w.shape)


def pact(x, alpha, bits):
    """PACT (Choi et al. 2018): clip to [0, alpha], 2^b - 1 levels, STE; alpha learned."""
    n = 2.0 ** bits - 1
    y = torch.where(x < alpha, F.relu(x), alpha)
    q = torch.round(y.detach() * n / alpha.detach()) * alpha.detach() / n
    return y + (q - y).detach()


class QConv(nn.Conv2d):
    def __init__(self, cin, cout, k, stride, bits, quantize_input):
        super().__init__(cin, cout, k, stride, k // 2, bias=False)
        self.bits = bits
        self.alpha = nn.Parameter(torch.tensor(6.0)) if bits < 32 and quantize_input else None

    def forward(self, x):
        if self.alpha is not None:
            x = pact(x, self.alpha, self.bits)
        w = lin_weight(self.weight, self.bits) if self.bits < 32 else self.weight
        return F.conv2d(x, w, None, self.stride, self.padding)


class Unit(nn.Module):  # QConvBn
    def __init__(self, cin, cout, k, stride, bits, relu=True, first=False):
        super().__init__()
        self.conv = QConv(cin, cout, k, stride, bits, not first)
        self.bn = nn.BatchNorm2d(cout)
        self.relu = relu

    def forward(self, x):
        y = self.bn(self.conv(x))
        return F.relu(y) if self.relu else y


class Block(nn.Module):
    def __init__(self, cin, cout, stride, bits, shortcut):
        super().__init__()
        self.conv1 = Unit(cin, cout, 3, stride, bits)
        self.conv2 = Unit(cout, cout, 3, 1, bits, relu=False)
        self.stride, self.pad = stride, cout - cin
        self.projection = Unit(cin, cout, 1, stride, bits, relu=False) if (
            shortcut == "B" and (stride != 1 or cin != cout)) else None

    def forward(self, x):
        if self.projection is not None:
            s = self.projection(x)
        elif self.stride != 1 or self.pad:
            s = F.pad(x[:, :, ::self.stride, ::self.stride], (0, 0, 0, 0, 0, self.pad))
        else:
            s = x
        return F.relu(self.conv2(self.conv1(x)) + s)


class ResNet(nn.Module):
    def __init__(self, kind, bits, classes, in_channels=3):
        super().__init__()
        layers = []
        if kind == 20:
            layers.append(Unit(in_channels, 16, 3, 1, bits, first=True))
            c = 16
            for stage in range(3):
                for b in range(3):
                    out = 16 << stage
                    layers.append(Block(c, out, 2 if stage > 0 and b == 0 else 1, bits, "A"))
                    c = out
        else:
            layers += [Unit(in_channels, 64, 7, 2, bits, first=True), nn.MaxPool2d(3, 2, 1)]
            c = 64
            for stage in range(4):
                for b in range(2):
                    out = 64 << stage
                    layers.append(Block(c, out, 2 if stage > 0 and b == 0 else 1, bits, "B"))
                    c = out
        self.body = nn.Sequential(*layers)
        self.fc = nn.Linear(c, classes)
        self.bits = bits
        self.alpha = nn.Parameter(torch.tensor(6.0)) if bits < 32 else None

    def forward(self, x):
        h = F.adaptive_avg_pool2d(self.body(x), 1).flatten(1)
        if self.alpha is None:
            return self.fc(h)
        return F.linear(pact(h, self.alpha, self.bits), lin_weight(self.fc.weight, self.bits), self.fc.bias)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", choices=["resnet20", "resnet18"], default="resnet20")
    p.add_argument("--image_size", type=int, default=32)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--bits", type=int, default=32)
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--device", default="cuda")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--repeats", type=int, default=5)
    a = p.parse_args()
    device = torch.device(a.device)
    torch.manual_seed(1)
    model = ResNet(20 if a.model == "resnet20" else 18, a.bits, a.classes).to(device).train()
    sgd = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    x = torch.randn(a.batch, 3, a.image_size, a.image_size, device=device)
    y = torch.randint(0, a.classes, (a.batch,), device=device)

    def step():
        sgd.zero_grad()
        F.cross_entropy(model(x), y).backward()
        sgd.step()

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for _ in range(a.warmup):
        step()
    sync()
    seconds = []
    for _ in range(a.repeats):
        start = time.perf_counter()
        for _ in range(a.steps):
            step()
        sync()
        seconds.append(time.perf_counter() - start)
    median = sorted(seconds)[len(seconds) // 2]
    print(json.dumps({"impl": "pytorch_eager", "model": a.model, "image_size": a.image_size, "batch": a.batch,
                      "bits": a.bits, "device": str(device), "steps": a.steps, "seconds": round(median, 6),
                      "images_per_second": round(a.steps * a.batch / median, 1)}))


if __name__ == "__main__":
    main()
