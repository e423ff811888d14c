"""Trains a digits classifier from the hub's digits dataset, as an Orrery training job.

The job contract (docs/jobs.md): the dataset is at $ORRERY_INPUTS/digits/digits.csv (read-only);
checkpoints go to $ORRERY_CHECKPOINT as plain tensors (.npz, never a pickle), one per epoch, and
a resumed or restarted attempt continues from the last one; each epoch appends a JSON line of
metrics to $ORRERY_METRICS; SIGTERM (a halt) saves a checkpoint at the next batch and exits 0;
the TorchScript model goes to $ORRERY_OUTPUT/model.pt. With a fixed seed and one thread, the
result is the same whether or not the run was halted and resumed."""

import argparse
import csv
import json
import os
import signal
import sys
import time

import numpy as np
import torch

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, default=5)
parser.add_argument("--hidden", type=int, default=64, help="width of the two hidden layers")
parser.add_argument("--batch", type=int, default=64)
parser.add_argument("--lr", type=float, default=3e-3)
parser.add_argument("--seed", type=int, default=0)
parser.add_argument("--epoch-delay", type=float, default=0.0,
                    help="seconds to wait after each epoch (to watch, halt and resume a short run)")
args = parser.parse_args()
torch.set_num_threads(1)

inputs = os.environ["ORRERY_INPUTS"]
checkpoint_dir = os.environ["ORRERY_CHECKPOINT"]
output_dir = os.environ["ORRERY_OUTPUT"]
metrics_file = os.environ["ORRERY_METRICS"]

with open(os.path.join(inputs, "digits", "digits.csv")) as f:
    rows = list(csv.reader(f))[1:]
data = np.array(rows, dtype=np.float32)
x_all, y_all = data[:, :64], data[:, 64].astype(np.int64)
order = np.random.RandomState(args.seed).permutation(len(data))
split = len(data) * 3 // 4  # 75% to train, the rest held out
train, test = order[:split], order[split:]
x_train, y_train = torch.from_numpy(x_all[train]), torch.from_numpy(y_all[train])
x_test, y_test = torch.from_numpy(x_all[test]), torch.from_numpy(y_all[test])


class Mlp(torch.nn.Module):
    def __init__(self, hidden):
        super().__init__()
        self.layers = torch.nn.Sequential(
            torch.nn.Linear(64, hidden), torch.nn.ReLU(),
            torch.nn.Linear(hidden, hidden), torch.nn.ReLU(),
            torch.nn.Linear(hidden, 10))

    def forward(self, pixels):
        return self.layers(pixels / 16.0)


torch.manual_seed(args.seed)
model = Mlp(args.hidden)
optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
print("parameters:", sum(p.numel() for p in model.parameters()), flush=True)

# Resume: the last checkpoint's weights, optimizer moments and epoch.
checkpoint = os.path.join(checkpoint_dir, "last.npz")
first_epoch = 0
if os.path.exists(checkpoint):
    saved = np.load(checkpoint)
    model.load_state_dict({k[6:]: torch.from_numpy(saved[k]) for k in saved.files
                           if k.startswith("model.")})
    for i, group in enumerate(optimizer.param_groups):
        for j, p in enumerate(group["params"]):
            if "adam.%d.%d.step" % (i, j) in saved.files:
                optimizer.state[p] = {
                    "step": torch.tensor(float(saved["adam.%d.%d.step" % (i, j)])),
                    "exp_avg": torch.from_numpy(saved["adam.%d.%d.m" % (i, j)]),
                    "exp_avg_sq": torch.from_numpy(saved["adam.%d.%d.v" % (i, j)])}
    first_epoch = int(saved["epoch"])
    print("resumed after epoch", first_epoch, flush=True)


def save(epoch):
    arrays = {"model." + k: v.numpy() for k, v in model.state_dict().items()}
    for i, group in enumerate(optimizer.param_groups):
        for j, p in enumerate(group["params"]):
            state = optimizer.state.get(p)
            if state:
                arrays["adam.%d.%d.step" % (i, j)] = np.array(float(state["step"]))
                arrays["adam.%d.%d.m" % (i, j)] = state["exp_avg"].numpy()
                arrays["adam.%d.%d.v" % (i, j)] = state["exp_avg_sq"].numpy()
    arrays["epoch"] = np.array(epoch)
    temporary = os.path.join(checkpoint_dir, "last.tmp.npz")
    np.savez(temporary, **arrays)
    os.replace(temporary, checkpoint)  # a kill never leaves half a checkpoint


halting = False


def on_term(signum, frame):
    global halting
    halting = True


signal.signal(signal.SIGTERM, on_term)
for epoch in range(first_epoch, args.epochs):
    generator = torch.Generator().manual_seed(args.seed * 1000 + epoch)
    batches = torch.randperm(len(x_train), generator=generator).split(args.batch)
    model.train()
    total = 0.0
    for batch in batches:
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x_train[batch]), y_train[batch])
        loss.backward()
        optimizer.step()
        total += loss.item() * len(batch)
    model.eval()
    with torch.no_grad():
        accuracy = (model(x_test).argmax(1) == y_test).float().mean().item()
    save(epoch + 1)
    with open(metrics_file, "a") as f:
        f.write(json.dumps({"epoch": epoch + 1, "loss": round(total / len(x_train), 6),
                            "accuracy": round(accuracy, 6)}) + "\n")
    print("epoch %d: loss %.4f, held-out accuracy %.4f" % (epoch + 1, total / len(x_train),
                                                           accuracy), flush=True)
    if halting:
        print("halted after epoch", epoch + 1, flush=True)
        sys.exit(0)
    time.sleep(args.epoch_delay)
    if halting:
        print("halted after epoch", epoch + 1, flush=True)
        sys.exit(0)

torch.jit.script(model).save(os.path.join(output_dir, "model.pt"))
print("saved the TorchScript model", flush=True)
