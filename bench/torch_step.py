"""Time the toolkit's naive training step re-written in PyTorch, on the CPU.

A benchmark reference only: the toolkit and its tests never import it.
The model mirrors lib/models (two ResNet18 encoders without conv biases,
batch norm with batch statistics, global average pooling, a concat fusion
head and two probe heads on detached features). The loss is the fused
cross-entropy plus both probe cross-entropies, the optimiser SGD with
momentum and L2 weight decay on every parameter, and the step checks that
the gradient norm is finite before the update, as lib/train/trainer.ts does.
Convolutions pad symmetrically where tfjs pads "same" (one more row at the
bottom for stride 2); the output sizes and FLOPs are the same. The input is
random, of the measured shapes.

Usage:
    /usr/bin/python3 bench/torch_step.py --spec JSON --threads N
        --warmup N --steps N

--spec is a JSON object with the fields of ShapeSpec in bench/cases.ts.
Progress goes to stderr; the result is one JSON line on stdout.
"""

import argparse
import json
import resource
import statistics
import sys
import time

import torch
from torch import nn
from torch.nn import functional as F


class BasicBlock(nn.Module):
    """ResNet basic block: two 3x3 convs and a 1x1 downsample shortcut."""

    def __init__(self, in_channels, out_channels, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.downsample = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x):
        h = F.relu(self.bn1(self.conv1(x)))
        h = self.bn2(self.conv2(h))
        shortcut = x if self.downsample is None else self.downsample(x)
        return F.relu(h + shortcut)


class ResNet18Encoder(nn.Module):
    """ResNet18 up to the last feature map; stems as in lib/models/resnet.ts."""

    def __init__(self, in_channels, width, stem):
        super().__init__()
        if stem == "imagenet":
            self.stem = nn.Conv2d(in_channels, width, 7, 2, 3, bias=False)
            self.pool = nn.MaxPool2d(3, 2, 1)
        elif stem == "cifar":
            self.stem = nn.Conv2d(in_channels, width, 3, 1, 1, bias=False)
            self.pool = nn.Identity()
        else:
            raise ValueError(f"invalid stem {stem!r}: expected imagenet or cifar")
        self.bn = nn.BatchNorm2d(width)
        blocks = []
        channels = width
        for stage in range(4):
            out_channels = width * 2**stage
            for block in range(2):
                stride = 2 if stage > 0 and block == 0 else 1
                blocks.append(BasicBlock(channels, out_channels, stride))
                channels = out_channels
        self.blocks = nn.Sequential(*blocks)
        self.out_channels = channels

    def forward(self, x):
        return self.blocks(self.pool(F.relu(self.bn(self.stem(x)))))


class AudioVisualModel(nn.Module):
    """Two encoders, concat fusion head and two probe heads."""

    def __init__(self, spec):
        super().__init__()
        width = spec["width"]
        classes = spec["numClasses"]
        channels = spec["visualShape"][3]
        self.audio = ResNet18Encoder(1, width, spec["audioStem"])
        self.visual = ResNet18Encoder(channels, width, spec["visualStem"])
        dim = self.audio.out_channels
        self.fusion = nn.Linear(2 * dim, classes)
        self.probe_audio = nn.Linear(dim, classes)
        self.probe_visual = nn.Linear(dim, classes)

    def forward(self, audio, visual):
        """audio [B, 1, F, W], visual [B, T, C, H, W] -> three logit tensors."""
        b, t, c, h, w = visual.shape
        fa = self.audio(audio).mean(dim=(2, 3))
        # Frames are folded into the batch, then pooled over T, h and w.
        maps = self.visual(visual.reshape(b * t, c, h, w))
        fv = maps.reshape(b, t, *maps.shape[1:]).mean(dim=(1, 3, 4))
        fused = self.fusion(torch.cat([fa, fv], dim=1))
        return fused, self.probe_audio(fa.detach()), self.probe_visual(fv.detach())


def count_forward_flops(model, audio, visual):
    """Forward FLOPs per sample of conv and linear layers (2 x MACs), from hooks."""
    total = 0

    def hook(module, inputs, output):
        nonlocal total
        if isinstance(module, nn.Conv2d):
            kh, kw = module.kernel_size
            per_output = module.in_channels // module.groups * kh * kw
            total += 2 * output.numel() * per_output
        else:
            total += 2 * output.numel() * module.in_features

    handles = [
        m.register_forward_hook(hook)
        for m in model.modules()
        if isinstance(m, (nn.Conv2d, nn.Linear))
    ]
    model.eval()
    with torch.no_grad():
        model(audio, visual)
    model.train()
    for handle in handles:
        handle.remove()
    return total // audio.shape[0]


def train_step(model, optimizer, audio, visual, labels):
    """One naive-fusion step; returns the fused loss."""
    fused, probe_audio, probe_visual = model(audio, visual)
    fused_loss = F.cross_entropy(fused, labels)
    loss = (
        fused_loss
        + F.cross_entropy(probe_audio, labels)
        + F.cross_entropy(probe_visual, labels)
    )
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    norm = torch.sqrt(sum(p.grad.pow(2).sum() for p in model.parameters()))
    if not torch.isfinite(norm):
        raise FloatingPointError("the gradient norm is not finite")
    optimizer.step()
    return fused_loss.item()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--spec", required=True, help="ShapeSpec as JSON")
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps")
    parser.add_argument("--steps", type=int, default=3, help="timed steps")
    args = parser.parse_args()
    if args.threads < 1 or args.warmup < 0 or args.steps < 1:
        parser.error("--threads and --steps must be >= 1 and --warmup >= 0")
    spec = json.loads(args.spec)

    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    torch.manual_seed(0)
    model = AudioVisualModel(spec)
    optimizer = torch.optim.SGD(
        model.parameters(),
        lr=spec["lr"],
        momentum=spec["momentum"],
        weight_decay=spec["weightDecay"],
    )
    b = spec["batchSize"]
    f, w = spec["audioShape"]
    t, h, wv, c = spec["visualShape"]
    audio = torch.randn(b, 1, f, w)
    visual = torch.randn(b, t, c, h, wv)
    labels = torch.arange(b) % spec["numClasses"]
    flops = count_forward_flops(model, audio, visual)

    threads = "1 thread" if args.threads == 1 else f"{args.threads} threads"
    name = f"pytorch {spec['name']} naive, {threads}"
    seconds = []
    for i in range(args.warmup + args.steps):
        started = time.perf_counter()
        train_step(model, optimizer, audio, visual, labels)
        elapsed = time.perf_counter() - started
        if i < args.warmup:
            phase = f"warm-up step {i + 1}/{args.warmup}"
        else:
            seconds.append(elapsed)
            phase = f"timed step {i - args.warmup + 1}/{args.steps}"
        print(f"  {name}: {phase} {elapsed:.2f} s", file=sys.stderr, flush=True)

    median = statistics.median(seconds)
    result = {
        "shape": spec["name"],
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "mkldnn": torch.backends.mkldnn.is_available(),
        "batchSize": b,
        "warmup": args.warmup,
        "stepSeconds": seconds,
        "medianSeconds": median,
        "samplesPerSecond": b / median,
        "forwardFlops": flops,
        "parameters": sum(p.numel() for p in model.parameters()),
        # ru_maxrss is in KiB on Linux.
        "rssPeakBytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
