#!/usr/bin/python3
"""The digits MLP served with FastAPI + uvicorn, written the usual way.

    /usr/bin/python3 bench/peers/fastapi_app.py MODEL.pt PORT

POST /predict {"inputs": [[64 floats], ...]} -> {"outputs": [[10 logits], ...]}, validated with
a pydantic model. uvicorn on 127.0.0.1, one process, log_level="warning" (no access log).
The endpoint is a plain `def` (FastAPI runs it in its thread pool), as FastAPI's docs advise for
blocking code; POST /predict_async is the same as an `async def` (runs on the event loop).
Used by bench/serving.py.
"""
import sys
from typing import List

import torch
import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel

model = torch.jit.load(sys.argv[1])
model.eval()

app = FastAPI()


class PredictRequest(BaseModel):
    inputs: List[List[float]]


@app.post("/predict")
def predict(req: PredictRequest):
    x = torch.tensor(req.inputs, dtype=torch.float32)
    with torch.no_grad():
        logits = model(x)
    return {"outputs": logits.tolist()}


@app.post("/predict_async")
async def predict_async(req: PredictRequest):
    x = torch.tensor(req.inputs, dtype=torch.float32)
    with torch.no_grad():
        logits = model(x)
    return {"outputs": logits.tolist()}


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
