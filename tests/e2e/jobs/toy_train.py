"""A deterministic toy training loop for the jobs tests: `steps` steps of `delay` seconds,
a checkpoint after each, metrics per step, SIGTERM saves and exits; the output is the
final value, which depends only on the number of steps taken."""
import json, os, signal, sys, time

steps, delay = int(sys.argv[1]), float(sys.argv[2])
ckpt = os.path.join(os.environ["ORRERY_CHECKPOINT"], "state.json")
state = {"step": 0, "value": 1}
if os.path.exists(ckpt):
    state = json.load(open(ckpt))
    print("resumed at step", state["step"], flush=True)

def save():
    tmp = ckpt + ".tmp"
    with open(tmp, "w") as f:
        json.dump(state, f)
    os.replace(tmp, ckpt)

stop = False
def on_term(signum, frame):
    global stop
    stop = True
signal.signal(signal.SIGTERM, on_term)
print("ready", flush=True)
while state["step"] < steps:
    if stop:
        save()
        print("halted at step", state["step"], flush=True)
        sys.exit(0)
    time.sleep(delay)
    state["value"] = (state["value"] * 31 + state["step"]) % 1000003
    state["step"] += 1
    save()
    with open(os.environ["ORRERY_METRICS"], "a") as f:
        f.write(json.dumps({"step": state["step"], "value": state["value"]}) + "\n")
    print("step", state["step"], flush=True)
json.dump(state, open(os.path.join(os.environ["ORRERY_OUTPUT"], "model.json"), "w"))
print("done", flush=True)
