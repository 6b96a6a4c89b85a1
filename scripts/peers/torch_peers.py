"""Train the benchmark workloads in PyTorch SNN libraries (snnTorch, SpikingJelly) and print
steps/s as JSON lines. Run by ``scripts/bench_peers.py`` with the Python of an environment that
has torch and the libraries (``pip install torch snntorch spikingjelly``); a library that is
not installed is skipped.

Workloads, as in ``scripts/bench.py``, with precomputed input spikes (rate coding outside the
step, as these libraries' tutorials do), Adam, cross-entropy on the mean membrane potential of
a leaky readout, beta 0.9, threshold 1, fast-sigmoid/arctan-style surrogates (their defaults):
``mlp`` 784-128-10, T=25, B=128; ``mlp1024`` 784-1024-10; ``conv`` 12C5-MP2-64C5-MP2 on
28x28x1 with VALID convolutions (28 -> 24 -> 12 -> 8 -> 4, as ``scripts/bench.py``), T=25, B=64.
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from torch import nn

WORKLOADS = {
    "mlp": dict(kind="mlp", hidden=128, T=25, B=128),
    "mlp1024": dict(kind="mlp", hidden=1024, T=25, B=128),
    "conv": dict(kind="conv", T=25, B=64),
}


def snntorch_model(w):
    import snntorch as snn
    from snntorch import surrogate

    grad = surrogate.fast_sigmoid(slope=25)

    class MLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2 = nn.Linear(784, w["hidden"]), nn.Linear(w["hidden"], 10)
            self.lif = snn.Leaky(beta=0.9, spike_grad=grad)
            self.out = snn.Leaky(beta=0.9, spike_grad=grad, reset_mechanism="none")

        def forward(self, x_TxBxD):
            m1, m2 = self.lif.init_leaky(), self.out.init_leaky()
            acc = 0
            for x in x_TxBxD:
                s, m1 = self.lif(self.fc1(x), m1)
                _, m2 = self.out(self.fc2(s), m2)
                acc = acc + m2
            return acc / len(x_TxBxD)

    class Conv(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1, self.c2 = nn.Conv2d(1, 12, 5), nn.Conv2d(12, 64, 5)  # VALID, as ours
            self.fc = nn.Linear(64 * 4 * 4, 10)
            self.l1, self.l2 = snn.Leaky(beta=0.9, spike_grad=grad), snn.Leaky(beta=0.9,
                                                                              spike_grad=grad)
            self.out = snn.Leaky(beta=0.9, spike_grad=grad, reset_mechanism="none")

        def forward(self, x_TxBxCxHxW):
            m1, m2, m3 = self.l1.init_leaky(), self.l2.init_leaky(), self.out.init_leaky()
            acc = 0
            for x in x_TxBxCxHxW:
                s, m1 = self.l1(nn.functional.max_pool2d(self.c1(x), 2), m1)
                s, m2 = self.l2(nn.functional.max_pool2d(self.c2(s), 2), m2)
                _, m3 = self.out(self.fc(s.flatten(1)), m3)
                acc = acc + m3
            return acc / len(x_TxBxCxHxW)

    return MLP() if w["kind"] == "mlp" else Conv()


def spikingjelly_model(w):
    from spikingjelly.activation_based import functional, layer, neuron, surrogate

    def lif(**kw):
        # decay_input=False, tau=10: v = 0.9 v + i (snnTorch's beta form)
        return neuron.LIFNode(tau=10.0, decay_input=False, v_reset=None, step_mode="m",
                              surrogate_function=surrogate.Sigmoid(), **kw)

    if w["kind"] == "mlp":
        body = nn.Sequential(layer.Linear(784, w["hidden"], step_mode="m"), lif(),
                             layer.Linear(w["hidden"], 10, step_mode="m"))
    else:
        body = nn.Sequential(
            layer.Conv2d(1, 12, 5, step_mode="m"), layer.MaxPool2d(2, step_mode="m"),
            lif(), layer.Conv2d(12, 64, 5, step_mode="m"),
            layer.MaxPool2d(2, step_mode="m"), lif(), layer.Flatten(step_mode="m"),
            layer.Linear(64 * 4 * 4, 10, step_mode="m"))

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = body

        def forward(self, x):
            functional.reset_net(self)
            return self.body(x).mean(0)  # membrane-free readout: mean of the last layer

    return Net()


LIBRARIES = {"snntorch": snntorch_model, "spikingjelly": spikingjelly_model}


def steps_per_s(make, w, seconds: float) -> float:
    torch.manual_seed(0)
    model = make(w)
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    shape = (w["T"], w["B"], 784) if w["kind"] == "mlp" else (w["T"], w["B"], 1, 28, 28)
    x = (torch.rand(shape) < 0.2).float()
    y = torch.randint(0, 10, (w["B"],))

    def step():
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()

    for _ in range(3):
        step()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds or n < 3:
        step()
        n += 1
    return n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workloads", default="mlp,conv")
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    for lib, make in LIBRARIES.items():
        try:
            __import__(lib)
        except ImportError:
            continue
        for name in args.workloads.split(","):
            sps = steps_per_s(make, WORKLOADS[name], args.seconds)
            print(json.dumps({"library": lib, "workload": name, "steps_per_s": sps,
                              "torch": torch.__version__}), flush=True)


if __name__ == "__main__":
    main()
