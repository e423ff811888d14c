#!/usr/bin/python3
"""The digits MLP served the way a scientist would write it with Flask.

    /usr/bin/python3 bench/peers/flask_app.py MODEL.pt PORT

POST /predict {"inputs": [[64 floats], ...]} -> {"outputs": [[10 logits], ...]}.
Flask's own server with threaded=True, on 127.0.0.1. Used by bench/serving.py.
"""
import logging
import sys

import torch
from flask import Flask, jsonify, request

model = torch.jit.load(sys.argv[1])
model.eval()

app = Flask(__name__)
logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no access log line per request


@app.post("/predict")
def predict():
    x = torch.tensor(request.json["inputs"], dtype=torch.float32)
    with torch.no_grad():
        logits = model(x)
    return jsonify({"outputs": logits.tolist()})


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(sys.argv[2]), threaded=True)
